// voxelize: dense voxel grids of batched point clouds.
//
// Layout (canonical shapes built by jax_robocache/voxelize.py):
//   points   [Bp, N, 3]      f32, Bp in {1, B}
//   features [Bf, N, C]      f32 | bf16, Bf in {1, B} ([1, N, 0] placeholder
//                            for count/occupancy)
//   lengths  [Bl]            s32, Bl in {1, B} (valid points per cloud)
//   out      [B, X, Y, Z]    s32 (count) | f32 (occupancy)
//            [B, X, Y, Z, C] features dtype (sum, mean, max)
// with B = max(Bp, Bf, Bl), or 0 if any of them is 0. The voxel of a point is
// VoxelId (voxel_grid.cuh), the same float32 operations as the jnp rule.
//
// Every mode starts from a zeroed grid (cudaMemsetAsync) and is bitwise
// deterministic:
//   count      one thread per point, int32 atomicAdd (integer: order-free).
//   occupancy  one thread per point, plain store of 1.0f (all writers agree).
//   max        one thread per point and channel, atomicMax of an
//              order-preserving key of the canonical value (-0 -> +0, any NaN
//              -> the quiet NaN, which ranks above +inf) kept in the output
//              buffer itself: uint32 keys for f32, uint16 keys (CAS loop) for
//              bf16; key 0 marks an empty voxel. An in-place pass decodes the
//              keys into values. Integer max is order-free and the key fixes
//              the value's bits, so ties cannot change the result (the jnp twin
//              names the lowest-index winner for gradients).
//   sum, mean  (separate handler, robocache_voxelize_sorted, with a scratch
//              workspace as its last result: uint8[B, bytes per cloud], sized
//              at lowering time by VoxelizeSortedWorkspacePerCloud; see
//              workspace.h) every point gets the key
//              cloud * V + voxel (a dropped point gets a spread key
//              cloud * V + i % V and index -1, which keeps the key range at
//              B * V), a stable cub radix sort orders the (key, point index)
//              pairs, and one thread per run of equal keys adds its points'
//              features in float32 in point-index order, then writes the sum
//              or sum / count (IEEE division), as the jnp twin does.
#include "voxelize.h"

#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "ffi_common.h"
#include "voxel_grid.cuh"
#include "workspace.h"

namespace robocache {
namespace {

// Mode codes shared with jax_robocache/voxelize.py (MODES).
enum Mode : int32_t { kCount = 0, kOccupancy = 1, kSum = 2, kMean = 3, kMax = 4 };

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 16;  // grid-stride loops beyond this
constexpr int kChannelChunk = 8;         // feature channels accumulated at once

struct VoxelArgs {
  const float* points;
  const void* features;
  const int32_t* lengths;
  void* out;
  int64_t B, N, C, V;
  int64_t points_stride, features_stride, lengths_stride;  // 0 when shared
  GridParams grid;
  uint32_t tiles;  // blocks per cloud in the per-point kernels
};

__device__ __forceinline__ int64_t GlobalThread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t GridStride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// Per-point kernels: one thread per point; block x covers kThreads points of
// one cloud (tile x % tiles of cloud x / tiles), so no 64-bit division.
__device__ __forceinline__ bool ThisPoint(const VoxelArgs& a, int64_t* b, int64_t* i) {
  const uint32_t cloud = blockIdx.x / a.tiles;
  *b = cloud;
  *i = static_cast<int64_t>(blockIdx.x - cloud * a.tiles) * kThreads + threadIdx.x;
  return *i < a.N;
}

// Voxel id of point i of cloud b, or -1 when it is dropped (past lengths,
// outside the range, non-finite).
__device__ __forceinline__ int32_t PointVoxel(const VoxelArgs& a, int64_t b, int64_t i) {
  if (i >= a.lengths[b * a.lengths_stride]) return -1;
  const float* p = a.points + b * a.points_stride + i * 3;
  const float xyz[3] = {p[0], p[1], p[2]};
  int32_t ijk[3];
  return VoxelId(a.grid, xyz, ijk);
}

// ---- count / occupancy ------------------------------------------------------
template <int32_t kMode>
__global__ void __launch_bounds__(kThreads) ScatterPointsKernel(VoxelArgs a) {
  int64_t b, i;
  if (!ThisPoint(a, &b, &i)) return;
  const int32_t vid = PointVoxel(a, b, i);
  if (vid < 0) return;
  const int64_t cell = b * a.V + vid;
  if constexpr (kMode == kCount) {
    atomicAdd(static_cast<int32_t*>(a.out) + cell, 1);
  } else {
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

// ---- sum / mean: sort by voxel, then reduce runs in point order --------------
template <typename K>
__global__ void __launch_bounds__(kThreads) SortKeysKernel(VoxelArgs a, K* keys,
                                                           int32_t* index) {
  int64_t b, i;
  if (!ThisPoint(a, &b, &i)) return;
  const int32_t vid = PointVoxel(a, b, i);
  const uint32_t spread = static_cast<uint32_t>(i) % static_cast<uint32_t>(a.V);
  const int64_t g = b * a.N + i;
  keys[g] = static_cast<K>(b) * static_cast<K>(a.V) + static_cast<K>(vid >= 0 ? vid : spread);
  index[g] = vid >= 0 ? static_cast<int32_t>(i) : -1;
}

template <typename K, typename F>
__global__ void __launch_bounds__(kThreads) RunSumKernel(const K* keys, const int32_t* index,
                                                         int64_t total, VoxelArgs a,
                                                         bool mean) {
  using E = Elem<F>;
  for (int64_t k = GlobalThread(); k < total; k += GridStride()) {
    const K key = keys[k];
    if (k > 0 && keys[k - 1] == key) continue;  // not the first of its run
    const int64_t b = static_cast<int64_t>(key / static_cast<K>(a.V));
    const F* f = static_cast<const F*>(a.features) + b * a.features_stride;
    F* out = static_cast<F*>(a.out) + static_cast<int64_t>(key) * a.C;
    for (int64_t c0 = 0; c0 < a.C; c0 += kChannelChunk) {
      float acc[kChannelChunk] = {};
      int32_t n = 0;
      for (int64_t j = k; j < total && keys[j] == key; ++j) {
        const int32_t i = index[j];
        if (i < 0) continue;  // a dropped point parked in this run
        ++n;
        const F* row = f + i * a.C + c0;
#pragma unroll
        for (int e = 0; e < kChannelChunk; ++e) {
          if (c0 + e < a.C) acc[e] = __fadd_rn(acc[e], E::load(row[e]));
        }
      }
      if (n == 0) break;  // only dropped points: the voxel stays 0
      const float count = __int2float_rn(n);
#pragma unroll
      for (int e = 0; e < kChannelChunk; ++e) {
        if (c0 + e < a.C) out[c0 + e] = E::store(mean ? __fdiv_rn(acc[e], count) : acc[e]);
      }
    }
  }
}

// Blocks of a grid-stride kernel over `work` items.
int64_t Blocks(int64_t work) {
  return std::max<int64_t>(1, std::min(CeilDiv(work, kThreads), kMaxBlocks));
}

// Blocks of a per-point kernel (see ThisPoint).
int64_t PointBlocks(const VoxelArgs& a) { return a.B * a.tiles; }

// Keys (B * V <= 2^32: 32-bit) and sort bits of the sorted sum of B clouds.
bool NarrowSortKeys(int64_t B, int64_t V) {
  return static_cast<uint64_t>(B) * static_cast<uint64_t>(V) <= (uint64_t{1} << 32);
}
int SortedSumEndBit(int64_t B, int64_t V) {
  const uint64_t keys = static_cast<uint64_t>(B) * static_cast<uint64_t>(V);
  return SortEndBit(keys > 0 ? keys - 1 : 0);
}

// Workspace of the sorted sum of `items` points: keys and point indices
// (double buffers for the radix sort), then cub's temporary storage.
size_t SortedSumWorkspace(int64_t items, size_t key_bytes, size_t sort_temp_bytes) {
  const size_t n = static_cast<size_t>(items);
  return WorkspaceBytes({n * key_bytes, n * key_bytes, n * sizeof(int32_t), n * sizeof(int32_t),
                         sort_temp_bytes});
}

template <typename K, typename F>
ffi::Error SortedSum(cudaStream_t stream, ffi::AnyBuffer workspace, const VoxelArgs& a,
                     bool mean) {
  const int64_t total = a.B * a.N;
  const size_t n = static_cast<size_t>(total);
  const int end_bit = SortedSumEndBit(a.B, a.V);
  cub::DoubleBuffer<K> keys(nullptr, nullptr);
  cub::DoubleBuffer<int32_t> index(nullptr, nullptr);
  size_t temp_bytes = 0;
  if (auto e = CheckCuda(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys, index,
                                                         total, 0, end_bit, stream),
                         "voxelize: sort size query");
      e.failure()) {
    return e;
  }
  if (auto e = CheckWorkspace(
          workspace, a.B, SortedSumWorkspace(total, sizeof(K), temp_bytes), "voxelize",
          "sum/mean of " + std::to_string(a.B) + " clouds x " + std::to_string(a.N) +
              " points on " + std::to_string(a.V) + " voxels",
          "voxelize_sorted_workspace_per_cloud");
      e.failure()) {
    return e;
  }
  WorkspaceCarver carve(workspace.untyped_data());
  K* key0 = carve.Take<K>(n * sizeof(K));
  K* key1 = carve.Take<K>(n * sizeof(K));
  int32_t* idx0 = carve.Take<int32_t>(n * sizeof(int32_t));
  int32_t* idx1 = carve.Take<int32_t>(n * sizeof(int32_t));
  void* temp = carve.Take<char>(temp_bytes);
  keys = cub::DoubleBuffer<K>(key0, key1);
  index = cub::DoubleBuffer<int32_t>(idx0, idx1);

  SortKeysKernel<K><<<PointBlocks(a), kThreads, 0, stream>>>(a, keys.Current(),
                                                               index.Current());
  if (auto e = LastCudaError("voxelize sort keys kernel launch"); e.failure()) return e;
  if (auto e = CheckCuda(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys, index, total,
                                                         0, end_bit, stream),
                         "voxelize: radix sort");
      e.failure()) {
    return e;
  }
  RunSumKernel<K, F><<<Blocks(total), kThreads, 0, stream>>>(keys.Current(), index.Current(),
                                                               total, a, mean);
  return LastCudaError("voxelize run sum kernel launch");
}

// Checks the buffers against each other and the mode; fills `a`.
ffi::Error ParseArgs(ffi::AnyBuffer points, ffi::AnyBuffer features,
                     ffi::Buffer<ffi::S32> lengths, ffi::AnyBuffer out, int32_t mode,
                     ffi::Span<const float> lo, ffi::Span<const float> hi,
                     ffi::Span<const float> size, VoxelArgs* a) {
  if (auto e = ExpectRank(points.dimensions(), 3, "points"); e.failure()) return e;
  if (auto e = ExpectRank(features.dimensions(), 3, "features"); e.failure()) return e;
  if (auto e = ExpectRank(lengths.dimensions(), 1, "lengths"); e.failure()) return e;
  if (mode < kCount || mode > kMax) return ffi::Error::InvalidArgument("voxelize: bad mode");
  if (lo.size() != 3 || hi.size() != 3 || size.size() != 3) {
    return ffi::Error::InvalidArgument("voxelize: lo, hi and size need 3 values each");
  }
  const auto pd = points.dimensions(), fd = features.dimensions(), od = out.dimensions();
  const int64_t Bp = pd[0], N = pd[1], Bf = fd[0], Bl = lengths.dimensions()[0];
  const bool with_features = mode >= kSum;
  const int64_t C = with_features ? fd[2] : 1;
  const int64_t B = (Bp == 0 || Bf == 0 || Bl == 0) ? 0 : std::max({Bp, Bf, Bl});
  auto shared_or_full = [B](int64_t n) { return n == 1 || n == B; };
  const size_t out_rank = with_features ? 5 : 4;
  bool ok = pd[2] == 3 && points.element_type() == ffi::DataType::F32 &&
            shared_or_full(Bp) && shared_or_full(Bf) && shared_or_full(Bl) &&
            od.size() == out_rank && od[0] == B && (!with_features || (fd[1] == N && od[4] == C));
  for (size_t d = 1; ok && d < 4; ++d) ok = od[d] >= 1 && od[d] <= 0x7fffffffLL;
  if (!ok) {
    return ffi::Error::InvalidArgument(
        "voxelize: inconsistent shapes points=" + ShapeString(pd) +
        " features=" + ShapeString(fd) + " lengths=" + ShapeString(lengths.dimensions()) +
        " out=" + ShapeString(od));
  }
  const ffi::DataType want = mode == kCount       ? ffi::DataType::S32
                             : mode == kOccupancy ? ffi::DataType::F32
                                                  : features.element_type();
  if (out.element_type() != want ||
      (with_features && want != ffi::DataType::F32 && want != ffi::DataType::BF16)) {
    return ffi::Error::InvalidArgument("voxelize: unsupported features/out dtypes");
  }
  const int64_t V = od[1] * od[2] * od[3];
  if (V >= (int64_t{1} << 31) || N >= (int64_t{1} << 31)) {
    return ffi::Error::InvalidArgument("voxelize: grid or cloud too large for int32 indices");
  }
  *a = VoxelArgs{static_cast<const float*>(points.untyped_data()), features.untyped_data(),
                 lengths.typed_data(), out.untyped_data(), B, N, C, V,
                 Bp == B ? N * 3 : 0, Bf == B ? N * C : 0, Bl == B ? 1 : 0, GridParams{},
                 static_cast<uint32_t>(CeilDiv(N, kThreads))};
  if (B * static_cast<int64_t>(a->tiles) > 0x7fffffffLL) {
    return ffi::Error::InvalidArgument("voxelize: too many clouds x point tiles");
  }
  for (int d = 0; d < 3; ++d) {
    a->grid.lo[d] = lo[d];
    a->grid.hi[d] = hi[d];
    a->grid.size[d] = size[d];
    a->grid.dims[d] = static_cast<int32_t>(od[d + 1]);
  }
  return ffi::Error::Success();
}

ffi::Error ZeroGrid(cudaStream_t stream, ffi::AnyBuffer out) {
  return CheckCuda(cudaMemsetAsync(out.untyped_data(), 0, out.size_bytes(), stream),
                   "voxelize: zeroing the grid");
}

template <typename F>
ffi::Error LaunchMax(cudaStream_t stream, const VoxelArgs& a) {
  using Key = typename MaxKeyOf<F>::Key;
  MaxKeysKernel<F><<<PointBlocks(a), kThreads, 0, stream>>>(a);
  if (auto e = LastCudaError("voxelize max kernel launch"); e.failure()) return e;
  const int64_t n = a.B * a.V * a.C;
  DecodeMaxKernel<Key><<<Blocks(CeilDiv(n, 16 / sizeof(Key))), kThreads, 0, stream>>>(
      static_cast<Key*>(a.out), n, Aligned16(a.out));
  return LastCudaError("voxelize max decode kernel launch");
}

ffi::Error VoxelizeImpl(cudaStream_t stream, ffi::AnyBuffer points, ffi::AnyBuffer features,
                        ffi::Buffer<ffi::S32> lengths, ffi::Result<ffi::AnyBuffer> out,
                        int32_t mode, ffi::Span<const float> lo, ffi::Span<const float> hi,
                        ffi::Span<const float> size) {
  VoxelArgs a;
  if (auto e = ParseArgs(points, features, lengths, *out, mode, lo, hi, size, &a);
      e.failure()) {
    return e;
  }
  if (mode == kSum || mode == kMean) {
    return ffi::Error::InvalidArgument("voxelize: sum/mean go to robocache_voxelize_sorted");
  }
  if (out->size_bytes() == 0) return ffi::Error::Success();
  if (auto e = ZeroGrid(stream, *out); e.failure()) return e;
  if (a.B * a.N == 0) return ffi::Error::Success();
  switch (mode) {
    case kCount:
      ScatterPointsKernel<kCount><<<PointBlocks(a), kThreads, 0, stream>>>(a);
      return LastCudaError("voxelize count kernel launch");
    case kOccupancy:
      ScatterPointsKernel<kOccupancy><<<PointBlocks(a), kThreads, 0, stream>>>(a);
      return LastCudaError("voxelize occupancy kernel launch");
    default:
      return features.element_type() == ffi::DataType::F32 ? LaunchMax<float>(stream, a)
                                                            : LaunchMax<__nv_bfloat16>(stream, a);
  }
}

ffi::Error VoxelizeSortedImpl(cudaStream_t stream, ffi::AnyBuffer points,
                              ffi::AnyBuffer features, ffi::Buffer<ffi::S32> lengths,
                              ffi::Result<ffi::AnyBuffer> out,
                              ffi::Result<ffi::AnyBuffer> workspace, int32_t mode,
                              ffi::Span<const float> lo,
                              ffi::Span<const float> hi, ffi::Span<const float> size) {
  VoxelArgs a;
  if (auto e = ParseArgs(points, features, lengths, *out, mode, lo, hi, size, &a);
      e.failure()) {
    return e;
  }
  if (mode != kSum && mode != kMean) {
    return ffi::Error::InvalidArgument("voxelize: only sum/mean use the sorted handler");
  }
  if (out->size_bytes() == 0) return ffi::Error::Success();
  if (auto e = ZeroGrid(stream, *out); e.failure()) return e;
  if (a.B * a.N == 0) return ffi::Error::Success();
  const bool mean = mode == kMean;
  const bool f32 = features.element_type() == ffi::DataType::F32;
  if (NarrowSortKeys(a.B, a.V)) {
    return f32 ? SortedSum<uint32_t, float>(stream, *workspace, a, mean)
               : SortedSum<uint32_t, __nv_bfloat16>(stream, *workspace, a, mean);
  }
  return f32 ? SortedSum<uint64_t, float>(stream, *workspace, a, mean)
             : SortedSum<uint64_t, __nv_bfloat16>(stream, *workspace, a, mean);
}

// The workspace of `clouds` clouds with keys and sort bits chosen for a batch
// of `batch` clouds (>= clouds: wider or equal keys, as many or more bits), cub's
// temporary storage bounded by SortTempBound.
size_t SortedSumWorkspaceBound(int64_t clouds, int64_t batch, int64_t N, int64_t V) {
  const int64_t items = clouds * N;
  const size_t key_bytes = NarrowSortKeys(batch, V) ? sizeof(uint32_t) : sizeof(uint64_t);
  return SortedSumWorkspace(items, key_bytes, SortTempBound(items, SortedSumEndBit(batch, V)));
}

int64_t NonNegative(int64_t x) { return x > 0 ? x : 0; }

}  // namespace

size_t VoxelizeSortedWorkspaceBytes(int64_t num_clouds, int64_t num_points,
                                    int64_t num_voxels) {
  const int64_t B = NonNegative(num_clouds), N = NonNegative(num_points);
  const int64_t V = NonNegative(num_voxels);
  return SortedSumWorkspaceBound(B, B, N, V);
}

size_t VoxelizeSortedWorkspacePerCloud(int64_t num_clouds, int64_t num_points,
                                       int64_t num_voxels) {
  const int64_t B = NonNegative(num_clouds), N = NonNegative(num_points);
  const int64_t V = NonNegative(num_voxels);
  return WorkspacePerCloud(
      [&](int64_t clouds) { return SortedSumWorkspaceBound(clouds, B, N, V); });
}

}  // namespace robocache

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    RobocacheVoxelize, robocache::VoxelizeImpl,
    xla::ffi::Ffi::Bind()
        .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
        .Arg<xla::ffi::AnyBuffer>()                // points
        .Arg<xla::ffi::AnyBuffer>()                // features
        .Arg<xla::ffi::Buffer<xla::ffi::S32>>()    // lengths
        .Ret<xla::ffi::AnyBuffer>()                // out
        .Attr<int32_t>("mode")
        .Attr<xla::ffi::Span<const float>>("lo")
        .Attr<xla::ffi::Span<const float>>("hi")
        .Attr<xla::ffi::Span<const float>>("size"),
    {xla::ffi::Traits::kCmdBufferCompatible});

// Its scratch is an ordinary XLA buffer (the workspace result), so it can be
// captured into command buffers like the other handlers.
XLA_FFI_DEFINE_HANDLER_SYMBOL(
    RobocacheVoxelizeSorted, robocache::VoxelizeSortedImpl,
    xla::ffi::Ffi::Bind()
        .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
        .Arg<xla::ffi::AnyBuffer>()                // points
        .Arg<xla::ffi::AnyBuffer>()                // features
        .Arg<xla::ffi::Buffer<xla::ffi::S32>>()    // lengths
        .Ret<xla::ffi::AnyBuffer>()                // out
        .Ret<xla::ffi::AnyBuffer>()                // workspace uint8[B, bytes per cloud]
        .Attr<int32_t>("mode")
        .Attr<xla::ffi::Span<const float>>("lo")
        .Attr<xla::ffi::Span<const float>>("hi")
        .Attr<xla::ffi::Span<const float>>("size"),
    {xla::ffi::Traits::kCmdBufferCompatible});
