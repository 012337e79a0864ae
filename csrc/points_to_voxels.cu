// points_to_voxels: hard voxelization with static shapes, deterministic, no
// host synchronisation.
//
// Layout (canonical shapes built by jax_robocache/points_to_voxels.py):
//   points         [Bp, N, 3]     f32, Bp in {1, B}
//   features       [Bf, N, C]     f32, Bf in {1, B} (C may be 0)
//   lengths        [Bl]           s32, Bl in {1, B}
//   voxels         [B, M, P, W]   f32, W = 3 + C
//   coords         [B, M, 3]      s32
//   num_points     [B, M]         s32
//   num_voxels     [B]            s32
//   point_to_voxel [B, N]         s32
//
// Every point g = b * N + i of the batch (T = B * N points) gets a 32/64-bit
// key b * G + voxel id (G voxels per cloud), or the sentinel B * G when it is
// dropped. Then:
//   1. KeysKernel:       keys, values = g, flags = 0.
//   2. cub radix sort of (key, g): stable, so each voxel's points end up
//      contiguous and in input order (a run); the run's first element is the
//      voxel's first point.
//   3. MarkFirstKernel:  flags[first point of each run] = 1 (point order).
//   4. TileScanKernel + TileOffsetsKernel: inclusive sum of the flags in point
//      order; the row of a voxel is (flags up to its first point) - 1 -
//      (flags of the earlier clouds).
//   5. AssignKernel:     per sorted position: rank within the run (< P decided
//      by comparing with the key P positions earlier), the run start by a
//      binary search over at most P positions, the row, point_to_voxel; run
//      starts record (sorted start, min(length, P)) for their row.
//   6. WriteKernel:      one warp per voxel row writes the whole row (gathered
//      kept points, zeros elsewhere), coords, num_points and num_voxels:
//      every output element is written exactly once, coalesced.
// Which point lands where is decided by integer sorting and scanning only
// (no atomics), so results are bitwise reproducible. O(N) work plus the sort.
// Scratch (keys, values, flags, scans, row starts/lengths, cub's temporary
// storage) is carved from the workspace, the handler's last result
// uint8[B, bytes per cloud], sized at lowering time by
// PointsToVoxelsWorkspacePerCloud (workspace.h). It is an ordinary XLA
// buffer, so the handler is command-buffer compatible.
#include "points_to_voxels.h"

#include <cub/block/block_load.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/block/block_store.cuh>
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cstdint>

#include "ffi_common.h"
#include "voxel_grid.cuh"
#include "workspace.h"

namespace robocache {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 20;
constexpr int kScanItems = 8;  // per thread
constexpr int kTileShift = 11;  // log2(kThreads * kScanItems)
constexpr int32_t kTile = 1 << kTileShift;
static_assert(kThreads * kScanItems == kTile, "scan tile size");

struct P2VArgs {
  const float* points;
  const float* features;
  const int32_t* lengths;
  int64_t points_stride, features_stride;  // elements per cloud, 0 when shared
  int32_t lengths_stride;                  // 1, or 0 when shared
  int32_t B, N, C, M, P, W;
  int64_t G;  // voxels per cloud
  GridParams grid;
};

template <typename K>
__global__ void __launch_bounds__(kThreads)
    KeysKernel(P2VArgs a, K* keys, int32_t* vals, int32_t* flags, int32_t T) {
  const int32_t g = blockIdx.x * blockDim.x + threadIdx.x;
  if (g >= T) return;
  const int32_t b = g / a.N, i = g - b * a.N;
  int32_t n = a.lengths[b * a.lengths_stride];
  n = n < 0 ? 0 : (n > a.N ? a.N : n);
  int32_t id = -1;
  if (i < n) {
    const float* p = a.points + b * a.points_stride + static_cast<int64_t>(i) * 3;
    const float xyz[3] = {p[0], p[1], p[2]};
    int32_t ijk[3];
    id = VoxelId(a.grid, xyz, ijk);
  }
  keys[g] = id >= 0 ? static_cast<K>(b) * static_cast<K>(a.G) + static_cast<K>(id)
                    : static_cast<K>(a.B) * static_cast<K>(a.G);
  vals[g] = g;
  flags[g] = 0;
}

template <typename K>
__global__ void __launch_bounds__(kThreads)
    MarkFirstKernel(const K* keys, const int32_t* vals, int32_t* flags, int32_t T,
                    K sentinel) {
  const int32_t s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s >= T) return;
  const K k = keys[s];
  if (k != sentinel && (s == 0 || keys[s - 1] != k)) flags[vals[s]] = 1;
}

// Inclusive sum of the first-point flags in point order, in two passes: each
// tile of kTile flags is scanned locally (TileScanKernel), then the tile
// totals are turned into exclusive tile offsets by one block
// (TileOffsetsKernel); readers add the two (FlagSum::operator()).
__global__ void __launch_bounds__(kThreads)
    TileScanKernel(const int32_t* flags, int32_t* local, int32_t* tile_total, int32_t T) {
  using Load = cub::BlockLoad<int32_t, kThreads, kScanItems, cub::BLOCK_LOAD_WARP_TRANSPOSE>;
  using Store = cub::BlockStore<int32_t, kThreads, kScanItems, cub::BLOCK_STORE_WARP_TRANSPOSE>;
  using Scan = cub::BlockScan<int32_t, kThreads>;
  __shared__ union {
    typename Load::TempStorage load;
    typename Store::TempStorage store;
    typename Scan::TempStorage scan;
  } smem;
  const int64_t base = static_cast<int64_t>(blockIdx.x) * kTile;
  const int32_t valid = static_cast<int32_t>(min(static_cast<int64_t>(kTile), T - base));
  int32_t items[kScanItems];
  Load(smem.load).Load(flags + base, items, valid, 0);
  __syncthreads();
  int32_t total;
  Scan(smem.scan).InclusiveSum(items, items, total);
  __syncthreads();
  Store(smem.store).Store(local + base, items, valid);
  if (threadIdx.x == 0) tile_total[blockIdx.x] = total;
}

__global__ void __launch_bounds__(kThreads) TileOffsetsKernel(int32_t* tile_total, int32_t tiles) {
  using Scan = cub::BlockScan<int32_t, kThreads>;
  __shared__ typename Scan::TempStorage smem;
  int32_t carry = 0;
  for (int32_t base = 0; base < tiles; base += kThreads) {
    const int32_t t = base + threadIdx.x;
    int32_t v = t < tiles ? tile_total[t] : 0, chunk;
    Scan(smem).ExclusiveSum(v, v, chunk);
    __syncthreads();
    if (t < tiles) tile_total[t] = v + carry;
    carry += chunk;
  }
}

struct FlagSum {
  const int32_t* local;
  const int32_t* tile_offset;
  // Number of first points with index <= g.
  __device__ __forceinline__ int32_t operator()(int64_t g) const {
    return local[g] + tile_offset[g >> kTileShift];
  }
  // Rows (voxels) of the clouds before cloud b.
  __device__ __forceinline__ int32_t Before(int32_t b, int32_t N) const {
    return b > 0 ? (*this)(static_cast<int64_t>(b) * N - 1) : 0;
  }
};

template <typename K>
__global__ void __launch_bounds__(kThreads)
    AssignKernel(P2VArgs a, const K* keys, const int32_t* vals, FlagSum incl,
                 int32_t* row_start, int32_t* row_len, int32_t* point_to_voxel, int32_t T,
                 K sentinel) {
  const int32_t s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s >= T) return;
  const K k = keys[s];
  const int32_t g = vals[s];
  const int32_t P = a.P;
  // Dropped point, or at least P points of its voxel come before it.
  if (k == sentinel || (s >= P && keys[s - P] == k)) {
    point_to_voxel[g] = -1;
    return;
  }
  // The run start lies within the last P positions: binary search for it.
  int32_t lo = s - P + 1 > 0 ? s - P + 1 : 0, hi = s;
  while (lo < hi) {
    const int32_t mid = lo + (hi - lo) / 2;
    if (keys[mid] < k) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  const int32_t b = g / a.N;
  const int32_t row = incl(vals[lo]) - 1 - incl.Before(b, a.N);
  if (row >= a.M) {
    point_to_voxel[g] = -1;
    return;
  }
  point_to_voxel[g] = row;
  if (s == lo) {
    int32_t len = 1;
    while (len < P && s + len < T && keys[s + len] == k) ++len;
    const int64_t r = static_cast<int64_t>(b) * a.M + row;
    row_start[r] = s;
    row_len[r] = len;
  }
}

// Element w of the voxel-row slot holding point g (its cloud b).
__device__ __forceinline__ float PointValue(const P2VArgs& a, int32_t b, int32_t g,
                                            int32_t w) {
  const int64_t i = g - static_cast<int64_t>(b) * a.N;
  return w < 3 ? a.points[b * a.points_stride + i * 3 + w]
               : a.features[b * a.features_stride + i * a.C + (w - 3)];
}

// One warp per voxel row r = b * M + m: the P x W floats of the row, coalesced
// (float4 when W % 4 == 0), then coords, num_points and (m == 0) num_voxels.
template <typename K, bool kVec4>
__global__ void __launch_bounds__(kThreads)
    WriteKernel(P2VArgs a, const K* keys, const int32_t* vals, FlagSum incl,
                const int32_t* row_start, const int32_t* row_len, float* voxels,
                int32_t* coords, int32_t* num_points, int32_t* num_voxels) {
  const int32_t lane = threadIdx.x & 31;
  const int64_t rows = static_cast<int64_t>(a.B) * a.M;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  const int32_t row_elems = a.P * a.W;
  for (int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
       r < rows; r += warps) {
    const int32_t b = static_cast<int32_t>(r / a.M);
    const int32_t m = static_cast<int32_t>(r - static_cast<int64_t>(b) * a.M);
    int32_t used = 0;  // rows used in cloud b
    if (a.N > 0) {
      used = incl(static_cast<int64_t>(b + 1) * a.N - 1) - incl.Before(b, a.N);
      used = used < a.M ? used : a.M;
    }
    int32_t len = 0, start = 0;
    if (m < used) {
      len = row_len[r];
      start = row_start[r];
    }
    float* out = voxels + r * row_elems;
    if constexpr (kVec4) {
      float4* out4 = reinterpret_cast<float4*>(out);
      for (int32_t c = lane; c < row_elems / 4; c += 32) {
        const int32_t p = (c * 4) / a.W, w0 = c * 4 - p * a.W;
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (p < len) {
          const int32_t g = vals[start + p];
          v = make_float4(PointValue(a, b, g, w0), PointValue(a, b, g, w0 + 1),
                          PointValue(a, b, g, w0 + 2), PointValue(a, b, g, w0 + 3));
        }
        out4[c] = v;
      }
    } else {
      for (int32_t e = lane; e < row_elems; e += 32) {
        const int32_t p = e / a.W, w = e - p * a.W;
        out[e] = p < len ? PointValue(a, b, vals[start + p], w) : 0.f;
      }
    }
    if (lane < 3) {
      int32_t c = -1;
      if (m < used) {
        // the voxel id (< G < 2^31) back to (x, y, z)
        const int32_t id =
            static_cast<int32_t>(keys[start] - static_cast<K>(b) * static_cast<K>(a.G));
        const int32_t Y = a.grid.dims[1], Z = a.grid.dims[2];
        c = lane == 2 ? id % Z : (lane == 1 ? (id / Z) % Y : id / Z / Y);
      }
      coords[r * 3 + lane] = c;
    }
    if (lane == 0) {
      num_points[r] = len;
      if (m == 0) num_voxels[b] = used;
    }
  }
}

// Keys of B clouds of G voxels (the sentinel B * G fits 32 bits: 32-bit keys).
bool NarrowKeys(int64_t B, int64_t G) {
  return static_cast<uint64_t>(B) * static_cast<uint64_t>(G) <= 0xffffffffULL;
}
int SortBits(int64_t B, int64_t G) {
  return SortEndBit(static_cast<uint64_t>(B) * static_cast<uint64_t>(G));
}

// Workspace of T points in `rows` voxel rows, in carving order (see Run).
size_t P2VWorkspace(int64_t T, int64_t rows, size_t key_bytes, size_t sort_temp_bytes) {
  const size_t t = static_cast<size_t>(T), r = static_cast<size_t>(rows);
  const size_t i32 = sizeof(int32_t);
  const size_t tiles = static_cast<size_t>(CeilDiv(T, kTile));
  return WorkspaceBytes({key_bytes * t, key_bytes * t,  // keys (double buffer)
                         i32 * t, i32 * t,              // point indices (double buffer)
                         i32 * t, i32 * t,              // first-point flags, tile scans
                         i32 * tiles,                   // tile offsets
                         i32 * r, i32 * r,              // row starts, row lengths
                         sort_temp_bytes});
}

template <typename K>
ffi::Error Run(cudaStream_t stream, ffi::AnyBuffer workspace, const P2VArgs& a, float* voxels,
               int32_t* coords, int32_t* num_points, int32_t* num_voxels,
               int32_t* point_to_voxel) {
  const int32_t T = a.B * a.N;
  const int64_t rows = static_cast<int64_t>(a.B) * a.M;
  const K sentinel = static_cast<K>(a.B) * static_cast<K>(a.G);
  K* keys = nullptr;
  int32_t* vals = nullptr;
  FlagSum incl{nullptr, nullptr};
  int32_t* row_start = nullptr;
  int32_t* row_len = nullptr;
  if (T > 0) {
    const int32_t end_bit = SortBits(a.B, a.G);
    size_t sort_bytes = 0;
    cub::DoubleBuffer<K> key_buf(nullptr, nullptr);
    cub::DoubleBuffer<int32_t> val_buf(nullptr, nullptr);
    if (auto e = CheckCuda(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, key_buf, val_buf,
                                                           T, 0, end_bit, stream),
                           "points_to_voxels: sort workspace size");
        e.failure()) {
      return e;
    }
    const int32_t tiles = static_cast<int32_t>(CeilDiv(T, kTile));
    if (auto e = CheckWorkspace(
            workspace, a.B, P2VWorkspace(T, rows, sizeof(K), sort_bytes), "points_to_voxels",
            std::to_string(a.B) + " clouds x " + std::to_string(a.N) + " points, max_voxels " +
                std::to_string(a.M),
            "points_to_voxels_workspace_per_cloud");
        e.failure()) {
      return e;
    }
    const size_t t = static_cast<size_t>(T), i32 = sizeof(int32_t);
    WorkspaceCarver carve(workspace.untyped_data());
    K* keys_a = carve.Take<K>(sizeof(K) * t);
    K* keys_b = carve.Take<K>(sizeof(K) * t);
    int32_t* vals_a = carve.Take<int32_t>(i32 * t);
    int32_t* vals_b = carve.Take<int32_t>(i32 * t);
    int32_t* flags = carve.Take<int32_t>(i32 * t);
    int32_t* local = carve.Take<int32_t>(i32 * t);
    int32_t* tile_offset = carve.Take<int32_t>(i32 * static_cast<size_t>(tiles));
    row_start = carve.Take<int32_t>(i32 * static_cast<size_t>(rows));
    row_len = carve.Take<int32_t>(i32 * static_cast<size_t>(rows));
    void* temp = carve.Take<char>(sort_bytes);

    const int32_t blocks = static_cast<int32_t>(CeilDiv(T, kThreads));
    KeysKernel<K><<<blocks, kThreads, 0, stream>>>(a, keys_a, vals_a, flags, T);
    if (auto e = LastCudaError("points_to_voxels keys kernel"); e.failure()) return e;
    key_buf = cub::DoubleBuffer<K>(keys_a, keys_b);
    val_buf = cub::DoubleBuffer<int32_t>(vals_a, vals_b);
    if (auto e = CheckCuda(cub::DeviceRadixSort::SortPairs(temp, sort_bytes, key_buf, val_buf, T,
                                                           0, end_bit, stream),
                           "points_to_voxels: radix sort");
        e.failure()) {
      return e;
    }
    keys = key_buf.Current();
    vals = val_buf.Current();
    MarkFirstKernel<K><<<blocks, kThreads, 0, stream>>>(keys, vals, flags, T, sentinel);
    if (auto e = LastCudaError("points_to_voxels first-point kernel"); e.failure()) return e;
    TileScanKernel<<<tiles, kThreads, 0, stream>>>(flags, local, tile_offset, T);
    if (auto e = LastCudaError("points_to_voxels tile scan kernel"); e.failure()) return e;
    TileOffsetsKernel<<<1, kThreads, 0, stream>>>(tile_offset, tiles);
    if (auto e = LastCudaError("points_to_voxels tile offsets kernel"); e.failure()) return e;
    incl = FlagSum{local, tile_offset};
    AssignKernel<K><<<blocks, kThreads, 0, stream>>>(a, keys, vals, incl, row_start, row_len,
                                                     point_to_voxel, T, sentinel);
    if (auto e = LastCudaError("points_to_voxels assign kernel"); e.failure()) return e;
  }
  if (rows == 0) return ffi::Error::Success();
  const int64_t blocks = std::min<int64_t>(CeilDiv(rows, kThreads / 32), kMaxBlocks);
  if (a.W % 4 == 0 && Aligned16(voxels)) {
    WriteKernel<K, true><<<blocks, kThreads, 0, stream>>>(a, keys, vals, incl, row_start, row_len,
                                                          voxels, coords, num_points, num_voxels);
  } else {
    WriteKernel<K, false><<<blocks, kThreads, 0, stream>>>(
        a, keys, vals, incl, row_start, row_len, voxels, coords, num_points, num_voxels);
  }
  return LastCudaError("points_to_voxels write kernel");
}

ffi::Error PointsToVoxelsImpl(cudaStream_t stream, ffi::Buffer<ffi::F32> points,
                              ffi::Buffer<ffi::F32> features,
                              ffi::Buffer<ffi::S32> lengths,
                              ffi::Result<ffi::Buffer<ffi::F32>> voxels,
                              ffi::Result<ffi::Buffer<ffi::S32>> coords,
                              ffi::Result<ffi::Buffer<ffi::S32>> num_points,
                              ffi::Result<ffi::Buffer<ffi::S32>> num_voxels,
                              ffi::Result<ffi::Buffer<ffi::S32>> point_to_voxel,
                              ffi::Result<ffi::AnyBuffer> workspace,
                              ffi::Span<const float> lo, ffi::Span<const float> hi,
                              ffi::Span<const float> size, ffi::Span<const int32_t> dims) {
  const auto pd = points.dimensions(), fd = features.dimensions();
  const auto vd = voxels->dimensions();
  if (pd.size() != 3 || fd.size() != 3 || lengths.dimensions().size() != 1 || vd.size() != 4 ||
      lo.size() != 3 || hi.size() != 3 || size.size() != 3 || dims.size() != 3) {
    return ffi::Error::InvalidArgument("points_to_voxels: bad ranks");
  }
  const int64_t B = vd[0], N = pd[1], C = fd[2], M = vd[1], P = vd[2], W = vd[3];
  const int64_t Bp = pd[0], Bf = fd[0], Bl = lengths.dimensions()[0];
  auto shared_or_full = [B](int64_t n) { return n == 1 || n == B; };
  const auto cd = coords->dimensions(), nd = num_points->dimensions();
  const auto ncd = num_voxels->dimensions(), td = point_to_voxel->dimensions();
  if (pd[2] != 3 || fd[1] != N || W != 3 + C || !shared_or_full(Bp) || !shared_or_full(Bf) ||
      !shared_or_full(Bl) || cd.size() != 3 || cd[0] != B || cd[1] != M || cd[2] != 3 ||
      nd.size() != 2 || nd[0] != B || nd[1] != M || ncd.size() != 1 || ncd[0] != B ||
      td.size() != 2 || td[0] != B || td[1] != N) {
    return ffi::Error::InvalidArgument(
        "points_to_voxels: inconsistent shapes points=" + ShapeString(pd) +
        " features=" + ShapeString(fd) + " voxels=" + ShapeString(vd));
  }
  if (B * N > 0x7fffffffLL || M < 1 || P < 1 || M > 0x7fffffffLL || P * W > 0x7fffffffLL ||
      B > 0x7fffffffLL) {
    return ffi::Error::InvalidArgument("points_to_voxels: sizes exceed int32 indexing");
  }
  P2VArgs a{};
  a.points = points.typed_data();
  a.features = features.typed_data();
  a.lengths = lengths.typed_data();
  a.points_stride = Bp == B ? N * 3 : 0;
  a.features_stride = Bf == B ? N * C : 0;
  a.lengths_stride = Bl == B ? 1 : 0;
  a.B = static_cast<int32_t>(B);
  a.N = static_cast<int32_t>(N);
  a.C = static_cast<int32_t>(C);
  a.M = static_cast<int32_t>(M);
  a.P = static_cast<int32_t>(P);
  a.W = static_cast<int32_t>(W);
  a.G = 1;
  for (int k = 0; k < 3; ++k) {
    a.grid.lo[k] = lo[k];
    a.grid.hi[k] = hi[k];
    a.grid.size[k] = size[k];
    a.grid.dims[k] = dims[k];
    if (dims[k] < 1) return ffi::Error::InvalidArgument("points_to_voxels: bad grid dims");
    a.G *= dims[k];
  }
  if (a.G > 0x7fffffffLL) return ffi::Error::InvalidArgument("points_to_voxels: grid too large");
  if (B == 0) return ffi::Error::Success();
  auto run = [&](auto key_tag) {
    return Run<decltype(key_tag)>(stream, *workspace, a, voxels->typed_data(),
                                  coords->typed_data(), num_points->typed_data(),
                                  num_voxels->typed_data(), point_to_voxel->typed_data());
  };
  return NarrowKeys(B, a.G) ? run(uint32_t{}) : run(uint64_t{});
}

// The workspace of `clouds` clouds with keys and sort bits chosen for a batch
// of `batch` clouds (>= clouds: wider or equal keys, as many or more bits), cub's
// temporary storage bounded by SortTempBound.
size_t P2VWorkspaceBound(int64_t clouds, int64_t batch, int64_t N, int64_t M, int64_t G) {
  const int64_t T = clouds * N;
  const size_t key_bytes = NarrowKeys(batch, G) ? sizeof(uint32_t) : sizeof(uint64_t);
  return P2VWorkspace(T, clouds * M, key_bytes, SortTempBound(T, SortBits(batch, G)));
}

int64_t NonNegative(int64_t x) { return x > 0 ? x : 0; }

}  // namespace

size_t PointsToVoxelsWorkspaceBytes(int64_t num_clouds, int64_t num_points, int64_t max_voxels,
                                    int64_t grid_voxels) {
  const int64_t B = NonNegative(num_clouds), N = NonNegative(num_points);
  const int64_t M = NonNegative(max_voxels), G = NonNegative(grid_voxels);
  return P2VWorkspaceBound(B, B, N, M, G);
}

size_t PointsToVoxelsWorkspacePerCloud(int64_t num_clouds, int64_t num_points,
                                       int64_t max_voxels, int64_t grid_voxels) {
  const int64_t B = NonNegative(num_clouds), N = NonNegative(num_points);
  const int64_t M = NonNegative(max_voxels), G = NonNegative(grid_voxels);
  return WorkspacePerCloud(
      [&](int64_t clouds) { return P2VWorkspaceBound(clouds, B, N, M, G); });
}

}  // namespace robocache

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    RobocachePointsToVoxels, robocache::PointsToVoxelsImpl,
    xla::ffi::Ffi::Bind()
        .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
        .Arg<xla::ffi::Buffer<xla::ffi::F32>>()   // points
        .Arg<xla::ffi::Buffer<xla::ffi::F32>>()   // features
        .Arg<xla::ffi::Buffer<xla::ffi::S32>>()   // lengths
        .Ret<xla::ffi::Buffer<xla::ffi::F32>>()   // voxels
        .Ret<xla::ffi::Buffer<xla::ffi::S32>>()   // coords
        .Ret<xla::ffi::Buffer<xla::ffi::S32>>()   // num_points
        .Ret<xla::ffi::Buffer<xla::ffi::S32>>()   // num_voxels
        .Ret<xla::ffi::Buffer<xla::ffi::S32>>()   // point_to_voxel
        .Ret<xla::ffi::AnyBuffer>()               // workspace uint8[B, bytes per cloud]
        .Attr<xla::ffi::Span<const float>>("lo")
        .Attr<xla::ffi::Span<const float>>("hi")
        .Attr<xla::ffi::Span<const float>>("size")
        .Attr<xla::ffi::Span<const int32_t>>("dims"),
    {xla::ffi::Traits::kCmdBufferCompatible});
