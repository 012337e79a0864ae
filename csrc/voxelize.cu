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
// count, occupancy and max start from a zeroed grid (cudaMemsetAsync); sum
// and mean write every voxel once. Every mode is bitwise deterministic:
//   count      one thread per point, int32 atomicAdd (integer: order-free);
//              a grid larger than half the L2 cache in slices (ScatterSlices).
//   occupancy  one thread per point, plain store of 1.0f (all writers agree);
//              sliced like count.
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
//              workspace.h) a stable radix sort by voxel, then one writer per
//              voxel: the correctly rounded float32 of the exact sum of its
//              points (see "sum / mean" below), or that sum / count (IEEE).
#include "voxelize.h"

#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "exact_sum.cuh"
#include "ffi_common.h"
#include "voxel_grid.cuh"
#include "workspace.h"

namespace robocache {
namespace {

// Mode codes shared with jax_robocache/voxelize.py (MODES).
enum Mode : int32_t { kCount = 0, kOccupancy = 1, kSum = 2, kMean = 3, kMax = 4 };

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 16;  // grid-stride loops beyond this

struct VoxelArgs {
  const float* points;
  const void* features;
  const int32_t* lengths;
  void* out;
  int64_t B, N, C, V;
  int64_t points_stride, features_stride, lengths_stride;  // 0 when shared
  GridParams grid;
  uint32_t tiles;  // blocks per cloud in the per-point kernels
  // count/occupancy passes (ScatterSlices): block x of a per-point kernel
  // works on cloud first_cloud + x / tiles; only cells (cloud * V + voxel) in
  // [cell_lo, cell_hi) are written.
  int64_t first_cloud, cell_lo, cell_hi;
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
  *b = a.first_cloud + cloud;
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
  if (cell < a.cell_lo || cell >= a.cell_hi) return;  // another pass's slice
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

// ---- sum / mean: sort by voxel, then one writer per voxel ---------------------
// Every point gets the key cloud * V + voxel (a dropped point gets a spread key
// cloud * V + i % V and index -1, which keeps the keys below B * V) and a
// stable cub radix sort orders the (key, point index) pairs, so each voxel's
// points form one run. TileBoundsKernel finds where each tile of kTileVoxels
// voxels starts in the sorted keys; one block per tile marks its runs in
// shared memory and one thread per voxel writes it, so the grid is written
// exactly once (no zeroing pass). The sum of a run is the correctly rounded
// float32 of the exact sum, whatever the order: one IEEE addition for runs of
// at most 2 entries (+ 0.0f turns -0 into +0, as the exact sum has no signed
// zero), exact_sum.cuh's integer accumulator for longer runs (HeavySumKernel:
// a thread per run, a warp per run longer than kWarpRun). Mean divides by the
// count (IEEE).

constexpr int32_t kTileVoxels = 2048;  // voxels per writer block
constexpr int32_t kWarpRun = 64;       // longer runs are summed by a whole warp
constexpr int kSumChannels = 4;        // channels accumulated at once (registers)

// A run of 3 or more entries (kept or dropped points), finished by HeavySumKernel.
struct HeavyRun {
  int32_t voxel, begin, end;  // voxel = cloud * V + voxel id; [begin, end) sorted positions
};

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

// bounds[j] = the first sorted position whose key is in tile j or later, for
// j in [0, tiles] (bounds[tiles] = total).
template <typename K>
__global__ void __launch_bounds__(kThreads) TileBoundsKernel(const K* keys, int64_t total,
                                                             int64_t tiles, int32_t* bounds) {
  for (int64_t k = GlobalThread(); k <= total; k += GridStride()) {
    const int64_t tile = k < total ? static_cast<int64_t>(keys[k] / kTileVoxels) : tiles;
    const int64_t prev = k > 0 ? static_cast<int64_t>(keys[k - 1] / kTileVoxels) : -1;
    for (int64_t j = prev + 1; j <= tile; ++j) bounds[j] = static_cast<int32_t>(k);
  }
}

// Float32 value of a voxel: 0 when empty, else the sum or sum / n (IEEE).
__device__ __forceinline__ float VoxelValue(float sum, int32_t n, bool mean) {
  return n == 0 ? 0.0f : (mean ? __fdiv_rn(sum, __int2float_rn(n)) : sum);
}

// Writes `kWidth` channels from c of a voxel of at most 2 points (rows
// `first`, `second`; n of them valid).
template <typename F, int kWidth>
__device__ __forceinline__ void WriteShortRun(const F* first, const F* second, int32_t n,
                                              bool mean, int64_t c, F* out) {
  using E = Elem<F>;
  using V = Vec<F, kWidth>;
  V x = {}, y = {}, o;
  if (n > 0) x = *reinterpret_cast<const V*>(first + c);
  if (n > 1) y = *reinterpret_cast<const V*>(second + c);
#pragma unroll
  for (int e = 0; e < kWidth; ++e) {
    float sum = n > 0 ? __fadd_rn(E::load(x.v[e]), 0.0f) : 0.0f;
    if (n > 1) sum = __fadd_rn(sum, E::load(y.v[e]));
    o.v[e] = E::store(VoxelValue(sum, n, mean));
  }
  *reinterpret_cast<V*>(out + c) = o;
}

// One block per tile of kTileVoxels voxels of the B * V grid.
template <typename K, typename F>
__global__ void __launch_bounds__(kThreads) WriteVoxelsKernel(VoxelArgs a, const K* keys,
                                                              const int32_t* index,
                                                              const int32_t* bounds, bool mean,
                                                              HeavyRun* heavy,
                                                              int32_t* heavy_count) {
  __shared__ int32_t run_begin[kTileVoxels], run_end[kTileVoxels];
  const int64_t v0 = static_cast<int64_t>(blockIdx.x) * kTileVoxels;
  const int64_t voxels = a.B * a.V;
  for (int32_t t = threadIdx.x; t < kTileVoxels; t += kThreads) run_begin[t] = run_end[t] = 0;
  __syncthreads();
  const int32_t lo = bounds[blockIdx.x], hi = bounds[blockIdx.x + 1];
  for (int32_t k = lo + threadIdx.x; k < hi; k += kThreads) {
    const K key = keys[k];
    const int32_t local = static_cast<int32_t>(key - static_cast<K>(v0));
    if (k == lo || keys[k - 1] != key) run_begin[local] = k;
    if (k + 1 == hi || keys[k + 1] != key) run_end[local] = k + 1;
  }
  __syncthreads();
  const bool vector4 = a.C % 4 == 0;  // rows of 4-element vectors (16 B f32, 8 B bf16)
  for (int32_t t = threadIdx.x; t < kTileVoxels && v0 + t < voxels; t += kThreads) {
    const int64_t g = v0 + t;
    const int32_t begin = run_begin[t], end = run_end[t];
    if (end - begin > 2) {
      heavy[atomicAdd(heavy_count, 1)] = HeavyRun{static_cast<int32_t>(g), begin, end};
      continue;
    }
    const int32_t i0 = end - begin > 0 ? index[begin] : -1;
    const int32_t i1 = end - begin > 1 ? index[begin + 1] : -1;
    const int32_t n = (i0 >= 0) + (i1 >= 0);
    const F* f = static_cast<const F*>(a.features) + (g / a.V) * a.features_stride;
    const F* first = f + static_cast<int64_t>(i0 >= 0 ? i0 : (i1 >= 0 ? i1 : 0)) * a.C;
    const F* second = f + static_cast<int64_t>(n == 2 ? i1 : 0) * a.C;
    F* out = static_cast<F*>(a.out) + g * a.C;
    if (vector4) {
      for (int64_t c = 0; c < a.C; c += 4) WriteShortRun<F, 4>(first, second, n, mean, c, out);
    } else {
      for (int64_t c = 0; c < a.C; ++c) WriteShortRun<F, 1>(first, second, n, mean, c, out);
    }
  }
}

// Exact sums of channels [c0, c0 + kSumChannels) over the kept points at
// sorted positions begin, begin + step, ... < end; returns their number.
template <typename F>
__device__ __forceinline__ int32_t AddRun(const F* f, int64_t C, int64_t c0,
                                          const int32_t* index, int32_t begin, int32_t end,
                                          int32_t step, ExactSum* acc) {
  using E = Elem<F>;
  int32_t kept = 0;
  for (int32_t k = begin; k < end; k += step) {
    const int32_t i = index[k];
    if (i < 0) continue;  // a dropped point parked in this run
    ++kept;
    const F* row = f + static_cast<int64_t>(i) * C + c0;
#pragma unroll
    for (int e = 0; e < kSumChannels; ++e) {
      if (c0 + e < C) acc[e].Add(E::load(row[e]));
    }
  }
  return kept;
}

// The runs of 3 or more entries: one thread per run, a warp per run longer
// than kWarpRun (the lanes' exact sums are added exactly: the split cannot
// change the result). Grid-stride over *heavy_count runs, whole warps.
template <typename F>
__global__ void __launch_bounds__(kThreads) HeavySumKernel(VoxelArgs a, const int32_t* index,
                                                           bool mean, const HeavyRun* heavy,
                                                           const int32_t* heavy_count) {
  using E = Elem<F>;
  const int32_t lane = threadIdx.x & 31;
  const int32_t count = *heavy_count;
  for (int64_t base = GlobalThread() - lane; base < count; base += GridStride()) {
    const bool inside = base + lane < count;
    const HeavyRun run = inside ? heavy[base + lane] : HeavyRun{0, 0, 0};
    const bool long_run = run.end - run.begin > kWarpRun;
    const F* f = static_cast<const F*>(a.features) + (run.voxel / a.V) * a.features_stride;
    F* out = static_cast<F*>(a.out) + static_cast<int64_t>(run.voxel) * a.C;
    for (int64_t c0 = 0; inside && !long_run && c0 < a.C; c0 += kSumChannels) {
      ExactSum acc[kSumChannels];
      const int32_t n = AddRun(f, a.C, c0, index, run.begin, run.end, 1, acc);
#pragma unroll
      for (int e = 0; e < kSumChannels; ++e) {
        if (c0 + e < a.C) out[c0 + e] = E::store(VoxelValue(acc[e].Round(), n, mean));
      }
    }
    for (uint32_t pending = __ballot_sync(0xffffffffu, inside && long_run); pending != 0;
         pending &= pending - 1) {
      const int owner = __ffs(pending) - 1;
      const int32_t voxel = __shfl_sync(0xffffffffu, run.voxel, owner);
      const int32_t begin = __shfl_sync(0xffffffffu, run.begin, owner);
      const int32_t end = __shfl_sync(0xffffffffu, run.end, owner);
      const F* g = static_cast<const F*>(a.features) + (voxel / a.V) * a.features_stride;
      F* o = static_cast<F*>(a.out) + static_cast<int64_t>(voxel) * a.C;
      for (int64_t c0 = 0; c0 < a.C; c0 += kSumChannels) {
        ExactSum acc[kSumChannels];
        const int32_t n = __reduce_add_sync(
            0xffffffffu, AddRun(g, a.C, c0, index, begin + lane, end, 32, acc));
#pragma unroll
        for (int e = 0; e < kSumChannels; ++e) {
          acc[e].WarpReduce();
          if (lane == e && c0 + e < a.C) {
            o[c0 + e] = E::store(VoxelValue(acc[e].Round(), n, mean));
          }
        }
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

// Workspace of the sorted sum of `items` points on `voxels` voxels: keys and
// point indices (double buffers for the radix sort), cub's temporary storage,
// the writer tiles' bounds, the heavy runs (at most items / 3) and their count.
size_t SortedSumWorkspace(int64_t items, int64_t voxels, size_t key_bytes,
                          size_t sort_temp_bytes) {
  const size_t n = static_cast<size_t>(items);
  const size_t tiles = static_cast<size_t>(CeilDiv(voxels, kTileVoxels));
  return WorkspaceBytes({n * key_bytes, n * key_bytes, n * sizeof(int32_t), n * sizeof(int32_t),
                         sort_temp_bytes, (tiles + 1) * sizeof(int32_t),
                         (n / 3 + 1) * sizeof(HeavyRun), sizeof(int32_t)});
}

template <typename K, typename F>
ffi::Error SortedSum(cudaStream_t stream, ffi::AnyBuffer workspace, const VoxelArgs& a,
                     bool mean) {
  const int64_t total = a.B * a.N, voxels = a.B * a.V;
  if (total >= (int64_t{1} << 31) || voxels >= (int64_t{1} << 31)) {
    return ffi::Error::InvalidArgument(
        "voxelize sum/mean: " + std::to_string(a.B) + " clouds x " + std::to_string(a.N) +
        " points on " + std::to_string(a.V) +
        " voxels: clouds x points and clouds x voxels must be < 2^31 in one call; split the "
        "batch");
  }
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
          workspace, a.B, SortedSumWorkspace(total, voxels, sizeof(K), temp_bytes), "voxelize",
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
  const int64_t tiles = CeilDiv(voxels, kTileVoxels);
  int32_t* bounds = carve.Take<int32_t>(static_cast<size_t>(tiles + 1) * sizeof(int32_t));
  HeavyRun* heavy = carve.Take<HeavyRun>((n / 3 + 1) * sizeof(HeavyRun));
  int32_t* heavy_count = carve.Take<int32_t>(sizeof(int32_t));
  keys = cub::DoubleBuffer<K>(key0, key1);
  index = cub::DoubleBuffer<int32_t>(idx0, idx1);

  if (auto e = CheckCuda(cudaMemsetAsync(heavy_count, 0, sizeof(int32_t), stream),
                         "voxelize: zeroing the heavy run count");
      e.failure()) {
    return e;
  }
  if (total > 0) {
    SortKeysKernel<K><<<PointBlocks(a), kThreads, 0, stream>>>(a, keys.Current(),
                                                                 index.Current());
    if (auto e = LastCudaError("voxelize sort keys kernel launch"); e.failure()) return e;
    if (auto e = CheckCuda(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys, index,
                                                           total, 0, end_bit, stream),
                           "voxelize: radix sort");
        e.failure()) {
      return e;
    }
  }
  TileBoundsKernel<K><<<Blocks(total + 1), kThreads, 0, stream>>>(keys.Current(), total, tiles,
                                                                   bounds);
  if (auto e = LastCudaError("voxelize tile bounds kernel launch"); e.failure()) return e;
  WriteVoxelsKernel<K, F><<<tiles, kThreads, 0, stream>>>(
      a, keys.Current(), index.Current(), bounds, mean, heavy, heavy_count);
  if (auto e = LastCudaError("voxelize write voxels kernel launch"); e.failure()) return e;
  if (total < 3) return ffi::Error::Success();
  HeavySumKernel<F><<<Blocks(static_cast<int64_t>(n / 3)), kThreads, 0, stream>>>(
      a, index.Current(), mean, heavy, heavy_count);
  return LastCudaError("voxelize heavy sum kernel launch");
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
                 static_cast<uint32_t>(CeilDiv(N, kThreads)), 0, 0, B * V};
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

// count / occupancy: integer atomics (or stores) at random cells. A grid much
// larger than the L2 cache makes most of them DRAM round trips, so such a grid
// is done in slices of at most half the L2 (at most kMaxSlicesPerCloud per
// cloud): each pass zeroes its slice, then scatters the points whose cell falls
// in it (the points are read once per pass, the cells stay in L2).
constexpr int64_t kMaxSlicesPerCloud = 8;
constexpr int64_t kMinPointsToSlice = int64_t{1} << 18;

ffi::Error ScatterSlices(cudaStream_t stream, VoxelArgs a, int32_t mode, size_t cell_bytes) {
  const int64_t cells = a.B * a.V;
  int64_t slice = cells;
  if (a.B * a.N >= kMinPointsToSlice) {
    int device = 0, l2_bytes = 0;
    if (auto e = CheckCuda(cudaGetDevice(&device), "voxelize: cudaGetDevice"); e.failure()) {
      return e;
    }
    if (auto e = CheckCuda(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device),
                           "voxelize: L2 cache size");
        e.failure()) {
      return e;
    }
    slice = std::max<int64_t>(l2_bytes / 2 / static_cast<int64_t>(cell_bytes), 1);
    slice = std::max(slice, CeilDiv(a.V, kMaxSlicesPerCloud));
  }
  char* out = static_cast<char*>(a.out);
  for (int64_t lo = 0; lo < cells; lo += slice) {
    const int64_t hi = std::min(cells, lo + slice);
    if (auto e = CheckCuda(cudaMemsetAsync(out + lo * cell_bytes, 0, (hi - lo) * cell_bytes,
                                           stream),
                           "voxelize: zeroing the grid");
        e.failure()) {
      return e;
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
    if (auto e = LastCudaError("voxelize count/occupancy kernel launch"); e.failure()) return e;
  }
  return ffi::Error::Success();
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
  if (mode == kCount || mode == kOccupancy) return ScatterSlices(stream, a, mode, 4);
  if (auto e = ZeroGrid(stream, *out); e.failure()) return e;
  if (a.B * a.N == 0) return ffi::Error::Success();
  return features.element_type() == ffi::DataType::F32 ? LaunchMax<float>(stream, a)
                                                        : LaunchMax<__nv_bfloat16>(stream, a);
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
  return SortedSumWorkspace(items, clouds * V, key_bytes,
                            SortTempBound(items, SortedSumEndBit(batch, V)));
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
