// points_to_voxels: kernels and launcher (points_to_voxels_kernels.h states
// the layout). Deterministic, no host synchronisation.
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
// PointsToVoxelsWorkspacePerCloud (common/workspace.h).
#include "voxels/points_to_voxels_kernels.h"

#include <cub/block/block_load.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/block/block_store.cuh>
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cstdint>
#include <string>

#include "common/launch.h"
#include "common/workspace.h"
#include "voxels/voxel_grid.h"

namespace robocache {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 20;
constexpr int kScanItems = 8;  // per thread
constexpr int kTileShift = 11;  // log2(kThreads * kScanItems)
constexpr int32_t kTile = 1 << kTileShift;
static_assert(kThreads * kScanItems == kTile, "scan tile size");

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
Status Run(cudaStream_t stream, const WorkspaceBuffer& workspace, const P2VArgs& a,
           const P2VOutputs& outputs) {
  float* voxels = outputs.voxels;
  int32_t* coords = outputs.coords;
  int32_t* num_points = outputs.num_points;
  int32_t* num_voxels = outputs.num_voxels;
  int32_t* point_to_voxel = outputs.point_to_voxel;
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
    if (Status s = Status::Cuda(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, key_buf,
                                                                val_buf, T, 0, end_bit, stream),
                                "points_to_voxels: sort workspace size");
        !s.ok()) {
      return s;
    }
    const int32_t tiles = static_cast<int32_t>(CeilDiv(T, kTile));
    if (Status s = CheckWorkspace(
            workspace, a.B, P2VWorkspace(T, rows, sizeof(K), sort_bytes), "points_to_voxels",
            std::to_string(a.B) + " clouds x " + std::to_string(a.N) + " points, max_voxels " +
                std::to_string(a.M),
            "points_to_voxels_workspace_per_cloud");
        !s.ok()) {
      return s;
    }
    const size_t t = static_cast<size_t>(T), i32 = sizeof(int32_t);
    WorkspaceCarver carve(workspace.data);
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
    if (Status s = Status::LastCuda("points_to_voxels keys kernel"); !s.ok()) return s;
    key_buf = cub::DoubleBuffer<K>(keys_a, keys_b);
    val_buf = cub::DoubleBuffer<int32_t>(vals_a, vals_b);
    if (Status s = Status::Cuda(cub::DeviceRadixSort::SortPairs(temp, sort_bytes, key_buf,
                                                                val_buf, T, 0, end_bit, stream),
                                "points_to_voxels: radix sort");
        !s.ok()) {
      return s;
    }
    keys = key_buf.Current();
    vals = val_buf.Current();
    MarkFirstKernel<K><<<blocks, kThreads, 0, stream>>>(keys, vals, flags, T, sentinel);
    if (Status s = Status::LastCuda("points_to_voxels first-point kernel"); !s.ok()) return s;
    TileScanKernel<<<tiles, kThreads, 0, stream>>>(flags, local, tile_offset, T);
    if (Status s = Status::LastCuda("points_to_voxels tile scan kernel"); !s.ok()) return s;
    TileOffsetsKernel<<<1, kThreads, 0, stream>>>(tile_offset, tiles);
    if (Status s = Status::LastCuda("points_to_voxels tile offsets kernel"); !s.ok()) return s;
    incl = FlagSum{local, tile_offset};
    AssignKernel<K><<<blocks, kThreads, 0, stream>>>(a, keys, vals, incl, row_start, row_len,
                                                     point_to_voxel, T, sentinel);
    if (Status s = Status::LastCuda("points_to_voxels assign kernel"); !s.ok()) return s;
  }
  if (rows == 0) return Status();
  const int64_t blocks = std::min<int64_t>(CeilDiv(rows, kThreads / 32), kMaxBlocks);
  if (a.W % 4 == 0 && Aligned16(voxels)) {
    WriteKernel<K, true><<<blocks, kThreads, 0, stream>>>(a, keys, vals, incl, row_start, row_len,
                                                          voxels, coords, num_points, num_voxels);
  } else {
    WriteKernel<K, false><<<blocks, kThreads, 0, stream>>>(
        a, keys, vals, incl, row_start, row_len, voxels, coords, num_points, num_voxels);
  }
  return Status::LastCuda("points_to_voxels write kernel");
}

// The workspace of `clouds` clouds with keys and sort bits chosen for a batch
// of `batch` clouds (>= clouds: wider or equal keys, as many or more bits), cub's
// temporary storage bounded by SortTempBound.
size_t P2VWorkspaceBound(int64_t clouds, int64_t batch, int64_t N, int64_t M, int64_t G) {
  const int64_t T = clouds * N;
  const size_t key_bytes = NarrowKeys(batch, G) ? sizeof(uint32_t) : sizeof(uint64_t);
  return P2VWorkspace(T, clouds * M, key_bytes, SortTempBound(T, SortBits(batch, G)));
}

}  // namespace

Status LaunchPointsToVoxels(cudaStream_t stream, const P2VArgs& args, const P2VOutputs& outputs,
                            const WorkspaceBuffer& workspace) {
  return NarrowKeys(args.B, args.G) ? Run<uint32_t>(stream, workspace, args, outputs)
                                    : Run<uint64_t>(stream, workspace, args, outputs);
}

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
