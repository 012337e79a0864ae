// voxelize count / occupancy / max: kernels and launcher (voxelize_kernels.h
// states the layout). Every mode is bitwise deterministic:
//   count      one thread per point, int32 atomicAdd (integer: order-free)
//              into the zeroed grid, one per cell and warp; a grid larger
//              than half the L2 cache in slices (ScatterSlices).
//   occupancy  one thread per point, plain store of 1.0f (all writers
//              agree); sliced like count.
//   max        one thread per point and channel, atomicMax of an
//              order-preserving key of the canonical value (-0 -> +0, any NaN
//              -> the quiet NaN, which ranks above +inf) kept in the output
//              buffer itself: uint32 keys for f32, uint16 keys (CAS loop) for
//              bf16; key 0 marks an empty voxel. An in-place pass decodes the
//              keys into values. Integer max is order-free and the key fixes
//              the value's bits, so ties cannot change the result.
#include <algorithm>
#include <cstdint>

#include "voxels/voxelize_args.cuh"
#include "voxels/voxelize_kernels.h"

namespace robocache {
namespace voxelize {
namespace {

// ---- count / occupancy: atomics into a zeroed grid ------------------------
// count: a run of consecutive lanes whose points share a cell adds once, its
// length: a sensor-ordered cloud (a LiDAR ring, a depth image's rows) puts runs
// of consecutive points in one voxel, which would otherwise queue up as atomics
// on one address. Finding runs costs one shuffle and one ballot, so uniformly
// random points (no runs) pay almost nothing for it (__match_any_sync, which
// also groups lanes that are not neighbours, cost them 30%: docs/perf).
template <int32_t kMode>
__global__ void __launch_bounds__(kThreads) ScatterPointsKernel(VoxelArgs a) {
  int64_t b, i, cell = -1;
  if (ThisPoint(a, &b, &i)) {
    const int32_t vid = PointVoxel(a, b, i);
    cell = vid < 0 ? -1 : b * a.V + vid;
    if (cell < a.cell_lo || cell >= a.cell_hi) cell = -1;  // dropped, or another pass's slice
  }
  if constexpr (kMode == kCount) {
    // every lane of the warp takes part (blocks are whole warps; lanes past the
    // cloud carry cell -1)
    const int lane = static_cast<int>(threadIdx.x & 31);
    const int64_t before = __shfl_up_sync(0xffffffffu, cell, 1);
    const bool head = lane == 0 || before != cell;  // the first lane of a run
    const unsigned heads = __ballot_sync(0xffffffffu, head);
    const unsigned later = heads & ~((2u << lane) - 1u);  // heads after this lane
    const int next = later != 0 ? __ffs(later) - 1 : 32;
    if (head && cell >= 0) atomicAdd(static_cast<int32_t*>(a.out) + cell, next - lane);
  } else if (cell >= 0) {
    static_cast<float*>(a.out)[cell] = 1.0f;
  }
}

// ---- max: order-preserving keys ---------------------------------------------
template <typename F>
struct MaxKeyOf;  // the unsigned integer key type of a feature type
template <>
struct MaxKeyOf<float> {
  using Key = uint32_t;
  __device__ static Key Bits(float v) { return __float_as_uint(v); }
};
template <>
struct MaxKeyOf<__nv_bfloat16> {
  using Key = unsigned short;
  __device__ static Key Bits(__nv_bfloat16 v) { return __bfloat16_as_ushort(v); }
};

template <typename Key>
struct KeyBits {
  static constexpr int kWidth = 8 * sizeof(Key);
  static constexpr Key kSign = static_cast<Key>(Key(1) << (kWidth - 1));
  static constexpr Key kAbs = static_cast<Key>(kSign - 1);
  // exponent all ones: +inf bits; the quiet NaN adds the top mantissa bit
  static constexpr Key kInf = sizeof(Key) == 4 ? Key(0x7f800000u) : Key(0x7f80u);
  static constexpr Key kQuietNan = sizeof(Key) == 4 ? Key(0x7fc00000u) : Key(0x7fc0u);
};

// Key of the canonical value of float bits: larger value <=> larger key, and
// never 0 (0 marks an empty voxel).
template <typename Key>
__host__ __device__ __forceinline__ Key MaxKey(Key bits) {
  using K = KeyBits<Key>;
  const Key mag = static_cast<Key>(bits & K::kAbs);
  if (mag == 0) bits = 0;                       // -0 -> +0
  else if (mag > K::kInf) bits = K::kQuietNan;  // any NaN -> the quiet NaN
  return (bits & K::kSign) ? static_cast<Key>(~bits) : static_cast<Key>(bits | K::kSign);
}

template <typename Key>
__host__ __device__ __forceinline__ Key DecodeMaxKey(Key key) {
  using K = KeyBits<Key>;
  if (key == 0) return 0;  // empty voxel: +0
  return (key & K::kSign) ? static_cast<Key>(key & K::kAbs) : static_cast<Key>(~key);
}

__device__ __forceinline__ void AtomicMaxKey(uint32_t* address, uint32_t key) {
  atomicMax(address, key);
}
__device__ __forceinline__ void AtomicMaxKey(unsigned short* address, unsigned short key) {
  unsigned short old = *reinterpret_cast<volatile unsigned short*>(address);
  while (old < key) {
    const unsigned short seen = atomicCAS(address, old, key);
    if (seen == old) break;
    old = seen;
  }
}

template <typename F>
__global__ void __launch_bounds__(kThreads) MaxKeysKernel(VoxelArgs a) {
  using Key = typename MaxKeyOf<F>::Key;
  int64_t b, i;
  if (!ThisPoint(a, &b, &i)) return;
  const int32_t vid = PointVoxel(a, b, i);
  if (vid < 0) return;
  const F* f = static_cast<const F*>(a.features) + b * a.features_stride + i * a.C;
  Key* keys = static_cast<Key*>(a.out) + (b * a.V + vid) * a.C;
  for (int64_t c = 0; c < a.C; ++c) {
    AtomicMaxKey(keys + c, MaxKey<Key>(MaxKeyOf<F>::Bits(f[c])));
  }
}

// In place: keys -> value bits; 16-byte words when `vectorised`.
template <typename Key>
__global__ void __launch_bounds__(kThreads) DecodeMaxKernel(Key* data, int64_t n,
                                                            bool vectorised) {
  constexpr int kPer = 16 / sizeof(Key);
  const int64_t words = vectorised ? n / kPer : 0;
  uint4* vec = reinterpret_cast<uint4*>(data);
  for (int64_t w = GlobalThread(); w < words; w += GridStride()) {
    union {
      uint4 u;
      Key k[kPer];
    } word;
    word.u = vec[w];
#pragma unroll
    for (int e = 0; e < kPer; ++e) word.k[e] = DecodeMaxKey(word.k[e]);
    vec[w] = word.u;
  }
  for (int64_t e = words * kPer + GlobalThread(); e < n; e += GridStride()) {
    data[e] = DecodeMaxKey(data[e]);
  }
}

Status ZeroGrid(cudaStream_t stream, void* out, size_t bytes) {
  return Status::Cuda(cudaMemsetAsync(out, 0, bytes, stream), "voxelize: zeroing the grid");
}

template <typename F>
Status LaunchMax(cudaStream_t stream, const VoxelArgs& a) {
  using Key = typename MaxKeyOf<F>::Key;
  MaxKeysKernel<F><<<PointBlocks(a), kThreads, 0, stream>>>(a);
  if (Status s = Status::LastCuda("voxelize max kernel launch"); !s.ok()) return s;
  const int64_t n = a.B * a.V * a.C;
  DecodeMaxKernel<Key><<<Blocks(CeilDiv(n, 16 / sizeof(Key))), kThreads, 0, stream>>>(
      static_cast<Key*>(a.out), n, Aligned16(a.out));
  return Status::LastCuda("voxelize max decode kernel launch");
}

// count / occupancy: integer atomics (or stores) at random cells. A grid much
// larger than the L2 cache makes most of them DRAM round trips, so such a grid
// is done in slices of at most half the L2 (at most kMaxSlicesPerCloud per
// cloud): each pass zeroes its slice, then scatters the points whose cell falls
// in it (the points are read once per pass, the cells stay in L2).
constexpr int64_t kMaxSlicesPerCloud = 8;
constexpr int64_t kMinPointsToSlice = int64_t{1} << 18;

Status ScatterSlices(cudaStream_t stream, VoxelArgs a, int32_t mode, size_t cell_bytes) {
  const int64_t cells = a.B * a.V;
  int64_t slice = cells;
  if (a.B * a.N >= kMinPointsToSlice) {
    int device = 0, l2_bytes = 0;
    if (Status s = Status::Cuda(cudaGetDevice(&device), "voxelize: cudaGetDevice"); !s.ok()) {
      return s;
    }
    if (Status s = Status::Cuda(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device),
                                "voxelize: L2 cache size");
        !s.ok()) {
      return s;
    }
    slice = std::max<int64_t>(l2_bytes / 2 / static_cast<int64_t>(cell_bytes), 1);
    slice = std::max(slice, CeilDiv(a.V, kMaxSlicesPerCloud));
  }
  char* out = static_cast<char*>(a.out);
  for (int64_t lo = 0; lo < cells; lo += slice) {
    const int64_t hi = std::min(cells, lo + slice);
    if (Status s = ZeroGrid(stream, out + lo * cell_bytes, (hi - lo) * cell_bytes); !s.ok()) {
      return s;
    }
    if (a.N == 0) continue;
    a.first_cloud = lo / a.V;
    a.cell_lo = lo;
    a.cell_hi = hi;
    const int64_t blocks = ((hi - 1) / a.V - a.first_cloud + 1) * a.tiles;
    if (mode == kCount) {
      ScatterPointsKernel<kCount><<<blocks, kThreads, 0, stream>>>(a);
    } else {
      ScatterPointsKernel<kOccupancy><<<blocks, kThreads, 0, stream>>>(a);
    }
    if (Status s = Status::LastCuda("voxelize count/occupancy kernel launch"); !s.ok()) return s;
  }
  return Status();
}

}  // namespace

Status LaunchVoxelize(cudaStream_t stream, const VoxelizeCall& call, int32_t mode,
                      ElemType features, size_t out_bytes) {
  VoxelArgs a;
  if (Status s = MakeVoxelArgs(call, &a); !s.ok()) return s;
  if (mode == kCount || mode == kOccupancy) return ScatterSlices(stream, a, mode, 4);
  if (Status s = ZeroGrid(stream, a.out, out_bytes); !s.ok()) return s;
  if (a.B * a.N == 0) return Status();
  return features == kF32 ? LaunchMax<float>(stream, a) : LaunchMax<__nv_bfloat16>(stream, a);
}

}  // namespace voxelize
}  // namespace robocache
