// voxelize sum / mean: the binned pipeline and its launcher (voxelize_kernels.h
// states the layout). The points are binned by tiles of cells and one block
// per tile writes every voxel of its tile exactly once (no zeroing pass, no
// global atomic per point): the correctly rounded float32 of the exact sum of
// the voxel's features, whatever the order of the points, or that sum / count
// (IEEE).
#include <cub/block/block_scan.cuh>

#include <algorithm>
#include <cstdint>
#include <string>

#include "common/exact_sum.cuh"
#include "common/workspace.h"
#include "voxels/voxelize_args.cuh"
#include "voxels/voxelize_kernels.h"

namespace robocache {
namespace voxelize {
namespace {

// ---- Binned pipeline: sum, mean -------------------------------------------------
// The B * V cells are cut into bins of 2^log_bin consecutive cells
// (kTileVoxels, or more when that would make more than kMaxBins bins) and the
// points into `partitions` contiguous ranges (one block each):
//   1. BinCountKernel    each point's cell (-1 when dropped) and, per
//                        partition, a shared-memory histogram of the bins,
//                        stored as counts[partition][bin].
//   2. ScanBinsKernel    per bin, exclusive sum of its counts over the
//                        partitions (one block per kScanBins bins, coalesced);
//                        the last block to finish turns the bin totals into
//                        bin_start (exclusive sum, then the total).
//   3. BinScatterKernel  every kept point into its bin's range of the bucket:
//                        its cell and a copy of its feature row. Up to
//                        kSubChunk points at a time are first grouped by bin
//                        in shared memory (their rows staged there), so that a
//                        bin's points leave as one contiguous run (coalesced
//                        stores); the order inside a bin is arbitrary
//                        (shared-memory atomics).
//   4. WriteBinKernel    one block per bin, kTileVoxels voxels at a time in
//                        shared memory: counts each voxel's points and keeps
//                        the bucket positions of the first two, then writes
//                        every voxel of the tile with at most 2 points once,
//                        coalesced, empty ones as 0. The bucket positions of
//                        voxels with 3 or more points are copied to contiguous
//                        ranges of heavy_point, one HeavyRun each,
//   5. HeavySumKernel    which sums them exactly.
// The order of the points inside a bin cannot change a result: a sum of at
// most 2 values is one IEEE addition, which is commutative (+ 0.0f first turns
// -0 into +0: the exact sum has no signed zero); longer sums are exact
// (exact_sum.cuh) and rounded once. The only global atomics are a scan ticket
// per scan block and two per tile with heavy voxels.

constexpr int32_t kTileLog = 13;
constexpr int32_t kTileVoxels = 1 << kTileLog;  // voxels a writer block holds at once
constexpr int32_t kMaxBins = 8192;              // bins of a partition's histogram
constexpr int32_t kMaxPartitions = 512;         // point ranges (blocks of kernels 1, 3)
constexpr int32_t kPointsPerPartition = 2048;   // fewer partitions for small batches
constexpr int kBinThreads = 256;                // kernel 1
constexpr int kScanBins = 32;                   // kernel 2: bins per block (one per lane)
constexpr int kScanThreads = 1024;              // kernel 2: 32 warps over the partitions
constexpr int kScatterThreads = 512;            // kernel 3
constexpr int32_t kSubChunk = 8192;             // kernel 3: most points grouped at once
constexpr int kWriteThreads = 512;              // kernel 4
constexpr int kPointsInFlight = 4;              // loads issued before use (kernel 1)
constexpr int kVoxelsInFlight = 2;              // rows gathered before use (kernel 4)
constexpr int32_t kWarpRun = 16;                // longer runs are summed by a whole warp
constexpr int kSumChannels = 4;                 // channels accumulated at once (registers)
static_assert(kMaxPartitions % (kScanThreads / 32) == 0, "ScanBinsKernel: partitions per warp");
static_assert(kMaxBins % kScanThreads == 0, "ScanBinsKernel's last block: bins per thread");
static_assert(kMaxBins % kScatterThreads == 0, "BinScatterKernel: bins per thread");
static_assert(kTileVoxels % kWriteThreads == 0, "QueueHeavyVoxels: voxels per thread");

// Global counters in the workspace (zeroed by BinCountKernel's block 0).
enum Counter : int { kScanTickets = 0, kHeavyPoints = 1, kHeavyRuns = 2, kCounters = 3 };

// The voxels of 3 or more points, finished by HeavySumKernel.
struct HeavyRun {
  int32_t voxel, begin, end;  // voxel = its cell; [begin, end) indices of heavy_point
};

struct BinLayout {
  int32_t total;       // points of the batch, B * N
  int32_t cells;       // B * V
  int32_t log_bin;     // cells per bin = 2^log_bin >= kTileVoxels
  int32_t bins;        // ceil(cells / 2^log_bin): 1 ... kMaxBins
  int32_t partitions;  // 1 ... kMaxPartitions
  int32_t chunk;       // points per partition (the last ones may hold fewer)
};

// Whether a batch fits the pipeline's int32 point and cell indices.
bool Binnable(int64_t B, int64_t N, int64_t V) {
  constexpr int64_t kLimit = int64_t{1} << 31;
  return B * N < kLimit && B * V < kLimit;
}

BinLayout MakeBinLayout(int64_t B, int64_t N, int64_t V) {
  BinLayout l;
  l.total = static_cast<int32_t>(B * N);
  l.cells = static_cast<int32_t>(B * V);
  l.log_bin = kTileLog;
  while (CeilDiv(l.cells, int64_t{1} << l.log_bin) > kMaxBins) ++l.log_bin;
  l.bins = static_cast<int32_t>(std::max<int64_t>(1, CeilDiv(l.cells, int64_t{1} << l.log_bin)));
  l.partitions = static_cast<int32_t>(
      std::clamp<int64_t>(CeilDiv(l.total, kPointsPerPartition), 1, kMaxPartitions));
  l.chunk = static_cast<int32_t>(std::max<int64_t>(1, CeilDiv(l.total, l.partitions)));
  return l;
}

struct BinBuffers {
  int32_t* cell;          // [total] cell of each point, -1 when dropped
  int32_t* bucket_cell;   // [total] the kept points' cells, grouped by bin
  void* bucket_row;       // [total] their feature rows (row_bytes each)
  int32_t* counts;        // [partitions][bins] histograms, then offsets in the bin
  int32_t* bin_start;     // [bins + 1] each bin's first bucket position; the total
  int32_t* counters;      // [kCounters]
  int32_t* heavy_point;   // [total] bucket positions of the voxels of 3 or more points
  HeavyRun* heavy;        // [total / 3 + 1] those voxels
};

// Bytes of the pipeline's scratch: BinBuffers' arrays in order, counts sized
// for kMaxPartitions whatever the call uses. row_bytes: one point's features.
size_t BinnedWorkspace(const BinLayout& l, size_t row_bytes) {
  const size_t n = static_cast<size_t>(l.total), per_point = n * sizeof(int32_t);
  return WorkspaceBytes({per_point, per_point, n * row_bytes,
                         size_t{kMaxPartitions} * l.bins * sizeof(int32_t),
                         (static_cast<size_t>(l.bins) + 1) * sizeof(int32_t),
                         kCounters * sizeof(int32_t), per_point,
                         (n / 3 + 1) * sizeof(HeavyRun)});
}

BinBuffers CarveBinBuffers(void* workspace, const BinLayout& l, size_t row_bytes) {
  const size_t n = static_cast<size_t>(l.total), per_point = n * sizeof(int32_t);
  WorkspaceCarver carve(workspace);
  BinBuffers w;
  w.cell = carve.Take<int32_t>(per_point);
  w.bucket_cell = carve.Take<int32_t>(per_point);
  w.bucket_row = carve.Take<char>(n * row_bytes);
  w.counts = carve.Take<int32_t>(size_t{kMaxPartitions} * l.bins * sizeof(int32_t));
  w.bin_start = carve.Take<int32_t>((static_cast<size_t>(l.bins) + 1) * sizeof(int32_t));
  w.counters = carve.Take<int32_t>(kCounters * sizeof(int32_t));
  w.heavy_point = carve.Take<int32_t>(per_point);
  w.heavy = carve.Take<HeavyRun>((n / 3 + 1) * sizeof(HeavyRun));
  return w;
}

// This block's points [*begin, *end) (kernels 1 and 3).
__device__ __forceinline__ void Partition(const BinLayout& l, int32_t* begin, int32_t* end) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * l.chunk;
  *begin = static_cast<int32_t>(first < l.total ? first : l.total);
  *end = static_cast<int32_t>(first + l.chunk < l.total ? first + l.chunk : l.total);
}

// Cloud of point p of the batch (32-bit division: p < 2^31).
__device__ __forceinline__ int32_t CloudOf(const VoxelArgs& a, int32_t p) {
  return static_cast<int32_t>(static_cast<uint32_t>(p) / static_cast<uint32_t>(a.N));
}

__global__ void __launch_bounds__(kBinThreads) BinCountKernel(VoxelArgs a, BinLayout l,
                                                              BinBuffers w) {
  extern __shared__ int32_t hist[];  // [l.bins]
  for (int32_t j = threadIdx.x; j < l.bins; j += kBinThreads) hist[j] = 0;
  if (blockIdx.x == 0 && threadIdx.x < kCounters) w.counters[threadIdx.x] = 0;
  __syncthreads();
  int32_t begin, end;
  Partition(l, &begin, &end);
  for (int32_t p0 = begin + threadIdx.x; p0 < end; p0 += kPointsInFlight * kBinThreads) {
    float xyz[kPointsInFlight][3];
    int32_t cloud[kPointsInFlight];
    bool valid[kPointsInFlight];
#pragma unroll
    for (int k = 0; k < kPointsInFlight; ++k) {
      const int32_t p = p0 + k * kBinThreads;
      cloud[k] = p < end ? CloudOf(a, p) : 0;
      const int64_t i = p - static_cast<int64_t>(cloud[k]) * a.N;
      valid[k] = p < end && i < a.lengths[cloud[k] * a.lengths_stride];
      const float* q = a.points + cloud[k] * a.points_stride + i * 3;
#pragma unroll
      for (int d = 0; d < 3; ++d) xyz[k][d] = valid[k] ? q[d] : 0.0f;
    }
#pragma unroll
    for (int k = 0; k < kPointsInFlight; ++k) {
      const int32_t p = p0 + k * kBinThreads;
      if (p >= end) break;
      int32_t ijk[3];
      const int32_t vid = valid[k] ? VoxelId(a.grid, xyz[k], ijk) : -1;
      const int32_t cell = vid < 0 ? -1 : cloud[k] * static_cast<int32_t>(a.V) + vid;
      w.cell[p] = cell;
      if (cell >= 0) atomicAdd(hist + (cell >> l.log_bin), 1);
    }
  }
  __syncthreads();
  int32_t* row = w.counts + static_cast<int64_t>(blockIdx.x) * l.bins;
  for (int32_t j = threadIdx.x; j < l.bins; j += kBinThreads) row[j] = hist[j];
}

// Exclusive sums of values[0, n) in place (n <= kMaxBins) by all kBlock
// threads of a block, from load(j) (which may read values: every load comes
// before the first store); returns the total. The values go in rows of 32, one
// per lane (no shared-memory bank conflicts), each warp scanning a contiguous
// range of rows. Ends with a barrier.
template <int kBlock, typename Load>
__device__ __forceinline__ int32_t ExclusiveSumInPlace(int32_t* values, int32_t n, Load load) {
  constexpr int kWarps = kBlock / 32, kMaxRows = kMaxBins / 32 / kWarps;
  static_assert(kMaxBins % kBlock == 0, "ExclusiveSumInPlace: rows per warp");
  __shared__ int32_t warp_total[kWarps];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int32_t rows = (n + 31) / 32, per_warp = (rows + kWarps - 1) / kWarps;
  int32_t before[kMaxRows], carry = 0;
#pragma unroll
  for (int r = 0; r < kMaxRows; ++r) {
    const int32_t j = (warp * per_warp + r) * 32 + lane;
    const int32_t x = r < per_warp && j < n ? load(j) : 0;
    int32_t inclusive = x;
#pragma unroll
    for (int d = 1; d < 32; d *= 2) {
      const int32_t y = __shfl_up_sync(0xffffffffu, inclusive, d);
      if (lane >= d) inclusive += y;
    }
    before[r] = carry + inclusive - x;
    carry += __shfl_sync(0xffffffffu, inclusive, 31);
  }
  if (lane == 0) warp_total[warp] = carry;
  __syncthreads();
  int32_t offset = 0, total = 0;
#pragma unroll
  for (int k = 0; k < kWarps; ++k) {
    const int32_t t = warp_total[k];
    offset += k < warp ? t : 0;
    total += t;
  }
#pragma unroll
  for (int r = 0; r < kMaxRows; ++r) {
    const int32_t j = (warp * per_warp + r) * 32 + lane;
    if (r < per_warp && j < n) values[j] = offset + before[r];
  }
  __syncthreads();
  return total;
}

// Block j: bins [kScanBins * j, + kScanBins), one per lane; warp w sums the
// partitions [w * kPer, + kPer) of its lane's bin, so every load is a row of
// kScanBins consecutive counts.
__global__ void __launch_bounds__(kScanThreads) ScanBinsKernel(BinLayout l, BinBuffers w) {
  constexpr int kWarps = kScanThreads / 32, kPer = kMaxPartitions / kWarps;
  __shared__ int32_t warp_sum[kWarps][kScanBins];
  __shared__ bool last;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int32_t bin = blockIdx.x * kScanBins + lane;
  int32_t counts[kPer], sum = 0;
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int32_t x = warp * kPer + k;
    counts[k] = bin < l.bins && x < l.partitions ? w.counts[static_cast<int64_t>(x) * l.bins + bin]
                                                 : 0;
    sum += counts[k];
  }
  warp_sum[warp][lane] = sum;
  __syncthreads();
  if (warp == 0) {  // exclusive sums over the warps, per bin
    int32_t running = 0;
    for (int v = 0; v < kWarps; ++v) {
      const int32_t t = warp_sum[v][lane];
      warp_sum[v][lane] = running;
      running += t;
    }
    if (bin < l.bins) w.bin_start[bin] = running;  // the bin's total, for now
  }
  __syncthreads();
  int32_t offset = warp_sum[warp][lane];
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int32_t x = warp * kPer + k;
    if (bin < l.bins && x < l.partitions) {
      w.counts[static_cast<int64_t>(x) * l.bins + bin] = offset;
    }
    offset += counts[k];
  }
  if (threadIdx.x == 0) {
    __threadfence();  // this block's totals are visible before the ticket is taken
    last = atomicAdd(w.counters + kScanTickets, 1) == static_cast<int32_t>(gridDim.x) - 1;
  }
  __syncthreads();
  if (!last) return;
  // The last block: every bin's total is written; exclusive sum in place
  // (read past L1: other blocks wrote them).
  const int32_t grand = ExclusiveSumInPlace<kScanThreads>(
      w.bin_start, l.bins, [&](int32_t j) { return __ldcg(w.bin_start + j); });
  if (threadIdx.x == 0) w.bin_start[l.bins] = grand;
}

// Copies one point's feature row (C elements) to the bucket.
template <typename F>
__device__ __forceinline__ void CopyRow(const F* from, F* to, int64_t C, bool vector4) {
  if (vector4) {
    for (int64_t c = 0; c < C; c += 4) {
      *reinterpret_cast<Vec<F, 4>*>(to + c) = *reinterpret_cast<const Vec<F, 4>*>(from + c);
    }
  } else {
    for (int64_t c = 0; c < C; ++c) to[c] = from[c];
  }
}

// Shared memory of BinScatterKernel: 3 arrays of bins, 2 of sub_chunk int32
// and sub_chunk feature rows of row_bytes.
size_t BinScatterShared(const BinLayout& l, int32_t sub_chunk, size_t row_bytes) {
  return (3 * static_cast<size_t>(l.bins) + 2 * static_cast<size_t>(sub_chunk)) *
             sizeof(int32_t) + static_cast<size_t>(sub_chunk) * row_bytes;
}

// sub_chunk <= kSubChunk points are grouped at once (their F rows staged in
// shared memory, so both the reads and the writes of the rows are coalesced).
template <typename F>
__global__ void __launch_bounds__(kScatterThreads) BinScatterKernel(VoxelArgs a, BinLayout l,
                                                                    BinBuffers w,
                                                                    int32_t sub_chunk) {
  extern __shared__ int32_t shared[];
  int32_t* next = shared;                 // [bins] this partition's next bucket position
  int32_t* start = next + l.bins;         // [bins] a bin's first grouped position
  int32_t* cursor = start + l.bins;       // [bins] histogram, then grouping cursor
  int32_t* grouped_cell = cursor + l.bins;            // [sub_chunk]
  int32_t* grouped_point = grouped_cell + sub_chunk;  // [sub_chunk] index in the sub-chunk
  F* staged = reinterpret_cast<F*>(grouped_point + sub_chunk);  // [sub_chunk][C]
  const int32_t* offsets = w.counts + static_cast<int64_t>(blockIdx.x) * l.bins;
  for (int32_t j = threadIdx.x; j < l.bins; j += kScatterThreads) {
    next[j] = w.bin_start[j] + offsets[j];
  }
  int32_t begin, end;
  Partition(l, &begin, &end);
  // rows of 4-element vectors, every one aligned
  const bool vector4 = a.C % 4 == 0 && (reinterpret_cast<uintptr_t>(a.features) & 15u) == 0 &&
                       (reinterpret_cast<uintptr_t>(w.bucket_row) & 15u) == 0 &&
                       (reinterpret_cast<uintptr_t>(staged) & 15u) == 0;
  for (int32_t s0 = begin; s0 < end; s0 += sub_chunk) {
    const int32_t s1 = min(end, s0 + sub_chunk);
    for (int32_t j = threadIdx.x; j < l.bins; j += kScatterThreads) cursor[j] = 0;
    __syncthreads();
    for (int32_t p = s0 + threadIdx.x; p < s1; p += kScatterThreads) {
      const int32_t cell = w.cell[p];
      if (cell >= 0) atomicAdd(cursor + (cell >> l.log_bin), 1);
    }
    __syncthreads();
    ExclusiveSumInPlace<kScatterThreads>(cursor, l.bins, [&](int32_t j) { return cursor[j]; });
    for (int32_t j = threadIdx.x; j < l.bins; j += kScatterThreads) start[j] = cursor[j];
    __syncthreads();
    for (int32_t p = s0 + threadIdx.x; p < s1; p += kScatterThreads) {
      const int32_t cell = w.cell[p];
      if (cell < 0) continue;
      const int32_t at = atomicAdd(cursor + (cell >> l.log_bin), 1);
      grouped_cell[at] = cell;
      grouped_point[at] = p - s0;
    }
    for (int32_t p = s0 + threadIdx.x; p < s1; p += kScatterThreads) {  // rows, point order
      const int32_t cloud = CloudOf(a, p);
      const F* from = static_cast<const F*>(a.features) + cloud * a.features_stride +
                      static_cast<int64_t>(p - cloud * static_cast<int32_t>(a.N)) * a.C;
      CopyRow(from, staged + static_cast<int64_t>(p - s0) * a.C, a.C, vector4);
    }
    __syncthreads();
    // cursor[j] is now the end of bin j's group; the last bin's end is the count.
    const int32_t kept = cursor[l.bins - 1];
    for (int32_t g = threadIdx.x; g < kept; g += kScatterThreads) {
      const int32_t cell = grouped_cell[g];
      const int32_t bin = cell >> l.log_bin;
      const int32_t slot = next[bin] + (g - start[bin]);
      w.bucket_cell[slot] = cell;
      CopyRow(staged + static_cast<int64_t>(grouped_point[g]) * a.C,
              static_cast<F*>(w.bucket_row) + static_cast<int64_t>(slot) * a.C, a.C, vector4);
    }
    __syncthreads();
    for (int32_t j = threadIdx.x; j < l.bins; j += kScatterThreads) {
      next[j] += cursor[j] - start[j];
    }
  }
}

// Float32 value of a voxel: 0 when empty, else the sum or sum / n (IEEE).
__device__ __forceinline__ float VoxelValue(float sum, int32_t n, bool mean) {
  return n == 0 ? 0.0f : (mean ? __fdiv_rn(sum, __int2float_rn(n)) : sum);
}

// The voxels of the tile [t0, t0 + width) with 3 or more points: their points
// are copied to one contiguous range of heavy_point each and a HeavyRun is
// queued per voxel; first[v] ends as the range's end. Called by the whole block.
__device__ __forceinline__ void QueueHeavyVoxels(const BinBuffers& w, int32_t t0, int32_t width,
                                                 int32_t lo, int32_t hi, const int32_t* count,
                                                 int32_t* first) {
  // Packed (points << 32 | voxels): both sums stay below 2^31.
  using Scan = cub::BlockScan<unsigned long long, kWriteThreads>;
  __shared__ typename Scan::TempStorage temp;
  __shared__ unsigned long long base;
  // Thread t takes the voxels t, t + kWriteThreads, ... (a warp reads 32
  // consecutive counts: no bank conflicts); any assignment gives each voxel
  // its own range.
  constexpr int kPer = kTileVoxels / kWriteThreads;
  unsigned long long mine = 0;
  for (int k = 0; k < kPer; ++k) {
    const int32_t v = threadIdx.x + k * kWriteThreads;
    if (v < width && count[v] >= 3) mine += (static_cast<unsigned long long>(count[v]) << 32) | 1;
  }
  unsigned long long before, total;
  Scan(temp).ExclusiveSum(mine, before, total);
  if (threadIdx.x == 0) {
    const int32_t points = atomicAdd(w.counters + kHeavyPoints, static_cast<int32_t>(total >> 32));
    const int32_t runs = atomicAdd(w.counters + kHeavyRuns, static_cast<int32_t>(total));
    base = (static_cast<unsigned long long>(points) << 32) | static_cast<uint32_t>(runs);
  }
  __syncthreads();
  unsigned long long at = base + before;
  for (int k = 0; k < kPer; ++k) {
    const int32_t v = threadIdx.x + k * kWriteThreads;
    if (v >= width || count[v] < 3) continue;
    const int32_t begin = static_cast<int32_t>(at >> 32);
    w.heavy[static_cast<uint32_t>(at)] = HeavyRun{t0 + v, begin, begin + count[v]};
    first[v] = begin;
    at += (static_cast<unsigned long long>(count[v]) << 32) | 1;
  }
  __syncthreads();
  for (int32_t k = lo + threadIdx.x; k < hi; k += kWriteThreads) {
    const uint32_t v = static_cast<uint32_t>(w.bucket_cell[k] - t0);
    if (v < static_cast<uint32_t>(width) && count[v] >= 3) {
      w.heavy_point[atomicAdd(first + v, 1)] = k;
    }
  }
  __syncthreads();
}

// Writes the voxels v0, v0 + kWriteThreads, ... (kVoxelsInFlight of them) of
// the tile at cell t0 that are inside it and hold at most 2 points, from their
// feature rows in the bucket (at positions first/second), all loaded before
// the first store.
template <typename F, int kWidth>
__device__ __forceinline__ void WriteLightVoxels(const VoxelArgs& a, const F* rows, int32_t t0,
                                                 int32_t width, int32_t v0, const int32_t* count,
                                                 const int32_t* first, const int32_t* second,
                                                 bool mean) {
  using E = Elem<F>;
  using V = Vec<F, kWidth>;
  int32_t n[kVoxelsInFlight];
  const F* row0[kVoxelsInFlight];
  const F* row1[kVoxelsInFlight];
  F* out[kVoxelsInFlight];
#pragma unroll
  for (int k = 0; k < kVoxelsInFlight; ++k) {
    const int32_t v = v0 + k * kWriteThreads;
    n[k] = v < width ? count[v] : 3;  // 3: not written here
    const int32_t cell = t0 + (v < width ? v : 0);
    row0[k] = rows + static_cast<int64_t>(n[k] > 0 && n[k] < 3 ? first[v] : 0) * a.C;
    row1[k] = rows + static_cast<int64_t>(n[k] == 2 ? second[v] : 0) * a.C;
    out[k] = static_cast<F*>(a.out) + static_cast<int64_t>(cell) * a.C;
  }
  for (int64_t c = 0; c < a.C; c += kWidth) {
    V x[kVoxelsInFlight], y[kVoxelsInFlight];
#pragma unroll
    for (int k = 0; k < kVoxelsInFlight; ++k) {
      x[k] = V{};
      y[k] = V{};
      if (n[k] > 0 && n[k] < 3) x[k] = *reinterpret_cast<const V*>(row0[k] + c);
      if (n[k] == 2) y[k] = *reinterpret_cast<const V*>(row1[k] + c);
    }
#pragma unroll
    for (int k = 0; k < kVoxelsInFlight; ++k) {
      if (n[k] >= 3) continue;
      V o;
#pragma unroll
      for (int e = 0; e < kWidth; ++e) {
        // x, y are +0 where not loaded, so this covers 0, 1 and 2 points (+ 0
        // last: the exact sum has no signed zero, -0 + -0 is -0); a mean of 2
        // halves it, rounded exactly as / 2 is.
        const float sum = __fadd_rn(__fadd_rn(E::load(x[k].v[e]), E::load(y[k].v[e])), 0.0f);
        o.v[e] = E::store(mean && n[k] == 2 ? __fmul_rn(sum, 0.5f) : sum);
      }
      *reinterpret_cast<V*>(out[k] + c) = o;
    }
  }
}

// One block per bin.
template <typename F>
__global__ void __launch_bounds__(kWriteThreads, 2) WriteBinKernel(VoxelArgs a, BinLayout l,
                                                                BinBuffers w, bool mean) {
  extern __shared__ int32_t tile[];
  int32_t* count = tile;                  // [kTileVoxels] points per voxel
  int32_t* first = tile + kTileVoxels;    // [kTileVoxels] bucket position of rank 0
  int32_t* second = first + kTileVoxels;  // [kTileVoxels] bucket position of rank 1
  const F* rows = static_cast<const F*>(w.bucket_row);
  const bool vector4 = a.C % 4 == 0;  // rows of 4-element vectors (16 B f32, 8 B bf16)
  const int32_t lo = w.bin_start[blockIdx.x], hi = w.bin_start[blockIdx.x + 1];
  const int64_t bin0 = static_cast<int64_t>(blockIdx.x) << l.log_bin;
  const int64_t bin_end = min(static_cast<int64_t>(l.cells), bin0 + (int64_t{1} << l.log_bin));
  for (int64_t tile0 = bin0; tile0 < bin_end; tile0 += kTileVoxels) {
    const int32_t t0 = static_cast<int32_t>(tile0);
    const int32_t width = static_cast<int32_t>(min(int64_t{kTileVoxels}, bin_end - tile0));
    for (int32_t v = threadIdx.x; v < kTileVoxels; v += kWriteThreads) count[v] = 0;
    __syncthreads();
    bool heavy = false;
    for (int32_t k = lo + threadIdx.x; k < hi; k += kWriteThreads) {
      const uint32_t v = static_cast<uint32_t>(w.bucket_cell[k] - t0);
      if (v >= static_cast<uint32_t>(width)) continue;  // another tile of a wide bin
      const int32_t rank = atomicAdd(count + v, 1);
      if (rank == 0) first[v] = k;
      if (rank == 1) second[v] = k;
      heavy |= rank == 2;
    }
    if (__syncthreads_or(heavy)) QueueHeavyVoxels(w, t0, width, lo, hi, count, first);
    for (int32_t v0 = threadIdx.x; v0 < width; v0 += kVoxelsInFlight * kWriteThreads) {
      if (vector4) {
        WriteLightVoxels<F, 4>(a, rows, t0, width, v0, count, first, second, mean);
      } else {
        WriteLightVoxels<F, 1>(a, rows, t0, width, v0, count, first, second, mean);
      }
    }
    __syncthreads();  // before the next tile clears the counts
  }
}

// Exact sums of channels [c0, c0 + kSumChannels) over the points index[k],
// k = begin, begin + step, ... < end; returns their number.
template <typename F>
__device__ __forceinline__ int32_t AddRun(const F* f, int64_t C, int64_t c0,
                                          const int32_t* index, int32_t begin, int32_t end,
                                          int32_t step, ExactSum* acc) {
  using E = Elem<F>;
  int32_t kept = 0;
  // Stops at end without forming k + step past it (that may pass INT32_MAX: up to
  // 2^31 - 1 points are binned).
  for (int32_t k = begin; k < end; k = k < end - step ? k + step : end) {
    const int32_t i = index[k];
    ++kept;
    const F* row = f + static_cast<int64_t>(i) * C + c0;
#pragma unroll
    for (int e = 0; e < kSumChannels; ++e) {
      if (c0 + e < C) acc[e].Add(E::load(row[e]));
    }
  }
  return kept;
}

// The heavy voxels (3 or more points each; run r's points' rows at
// rows[index[k]], k in [heavy[r].begin, heavy[r].end)), in two grid-stride
// passes of the same launch: every run of at most kWarpRun points by one
// thread, then every longer run by one whole warp (its lanes' exact sums are
// added exactly: the split cannot change the result). A warp never holds
// more than one long run at a time, so sensor-ordered clouds (a depth
// camera's surfaces put hundreds of points in a voxel) spread their long runs
// over every warp of the grid instead of queueing them behind each other.
template <typename F>
__device__ __forceinline__ void SumHeavyRuns(const F* rows, int64_t C, F* grid,
                                             const int32_t* index, bool mean,
                                             const HeavyRun* heavy, int64_t runs) {
  using E = Elem<F>;
  for (int64_t r = GlobalThread(); r < runs; r += GridStride()) {  // short runs
    const HeavyRun run = heavy[r];
    if (run.end - run.begin > kWarpRun) continue;
    F* out = grid + static_cast<int64_t>(run.voxel) * C;
    for (int64_t c0 = 0; c0 < C; c0 += kSumChannels) {
      ExactSum acc[kSumChannels];
      const int32_t n = AddRun(rows, C, c0, index, run.begin, run.end, 1, acc);
#pragma unroll
      for (int e = 0; e < kSumChannels; ++e) {
        if (c0 + e < C) out[c0 + e] = E::store(VoxelValue(acc[e].Round(), n, mean));
      }
    }
  }
  const int32_t lane = threadIdx.x & 31;
  const int64_t warps = GridStride() / 32;
  for (int64_t r = GlobalThread() / 32; r < runs; r += warps) {  // long runs, a warp each
    const HeavyRun run = heavy[r];  // the same run in every lane
    if (run.end - run.begin <= kWarpRun) continue;
    F* out = grid + static_cast<int64_t>(run.voxel) * C;
    for (int64_t c0 = 0; c0 < C; c0 += kSumChannels) {
      ExactSum acc[kSumChannels];
      const int32_t n = __reduce_add_sync(
          0xffffffffu, AddRun(rows, C, c0, index, run.begin + lane, run.end, 32, acc));
#pragma unroll
      for (int e = 0; e < kSumChannels; ++e) {
        acc[e].WarpReduce();
        if (lane == e && c0 + e < C) out[c0 + e] = E::store(VoxelValue(acc[e].Round(), n, mean));
      }
    }
  }
}

// All heavy runs (*heavy_count of them).
template <typename F>
__global__ void __launch_bounds__(kThreads) HeavySumKernel(VoxelArgs a, const int32_t* index,
                                                           bool mean, const HeavyRun* heavy,
                                                           const int32_t* heavy_count) {
  SumHeavyRuns(static_cast<const F*>(a.features), a.C, static_cast<F*>(a.out), index, mean,
               heavy, *heavy_count);
}

constexpr int64_t kMaxHeavyBlocks = 1024;  // HeavySumKernel is grid-stride over the runs

// Lets `kernel` ask for more than 48 KiB of dynamic shared memory: sets and
// returns in *limit the most it may ask for on this device (the opt-in maximum
// less its static shared memory). The limit is always that maximum, never one
// call's size: a CUDA graph may hold launches of the kernel from several calls
// (other grids), and lowering it for a small one would invalidate a larger one.
template <typename Kernel>
Status AllowSharedMemory(Kernel* kernel, const char* what, size_t* limit) {
  int device = 0, optin = 0;
  cudaFuncAttributes attributes{};
  if (Status s = Status::Cuda(cudaGetDevice(&device), what); !s.ok()) return s;
  if (Status s = Status::Cuda(
          cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), what);
      !s.ok()) {
    return s;
  }
  if (Status s = Status::Cuda(cudaFuncGetAttributes(&attributes, kernel), what); !s.ok()) {
    return s;
  }
  const size_t fixed = attributes.sharedSizeBytes;
  *limit = static_cast<size_t>(optin) > fixed ? static_cast<size_t>(optin) - fixed : 0;
  return Status::Cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(*limit)),
                      what);
}

// An error unless `bytes` of dynamic shared memory fit in `limit`.
Status CheckSharedMemory(size_t bytes, size_t limit, const char* what) {
  if (bytes <= limit) return Status();
  return Status::Invalid(std::string(what) + ": needs " + std::to_string(bytes) +
                                     " bytes, the device allows " + std::to_string(limit) +
                                     " (fewer feature channels would fit)");
}

// Points BinScatterKernel groups at once: kSubChunk or a partition's, fewer when
// their rows (and the 3 bin arrays) would not fit in `limit` (>= 1).
int32_t SubChunk(const BinLayout& l, size_t row_bytes, size_t limit) {
  const size_t fixed = BinScatterShared(l, 0, row_bytes);
  const size_t per_point = BinScatterShared(l, 1, row_bytes) - fixed;
  const size_t fit = limit > fixed ? (limit - fixed) / per_point : 1;
  return static_cast<int32_t>(
      std::clamp<size_t>(fit, 1, std::min<size_t>(kSubChunk, static_cast<size_t>(l.chunk))));
}

// The binned pipeline (see above), after checking that `workspace` holds
// BinnedWorkspace of the call (`what` describes it in errors).
template <typename F>
Status LaunchBinned(cudaStream_t stream, const WorkspaceBuffer& workspace, const VoxelArgs& a,
                    const std::string& what, bool mean) {
  const BinLayout l = MakeBinLayout(a.B, a.N, a.V);
  const size_t row_bytes = a.C * sizeof(F);
  if (Status s = CheckWorkspace(workspace, a.B, BinnedWorkspace(l, row_bytes), "voxelize",
                                "sum/mean of " + what, "voxelize_binned_workspace_per_cloud");
      !s.ok()) {
    return s;
  }
  const BinBuffers w = CarveBinBuffers(workspace.data, l, row_bytes);
  const size_t histogram = static_cast<size_t>(l.bins) * sizeof(int32_t);
  BinCountKernel<<<l.partitions, kBinThreads, histogram, stream>>>(a, l, w);
  if (Status s = Status::LastCuda("voxelize bin count kernel launch"); !s.ok()) return s;
  ScanBinsKernel<<<CeilDiv(l.bins, kScanBins), kScanThreads, 0, stream>>>(l, w);
  if (Status s = Status::LastCuda("voxelize bin scan kernel launch"); !s.ok()) return s;

  size_t scatter_limit = 0;
  if (Status s = AllowSharedMemory(&BinScatterKernel<F>,
                                   "voxelize: shared memory of the bin scatter", &scatter_limit);
      !s.ok()) {
    return s;
  }
  const int32_t sub_chunk = SubChunk(l, row_bytes, scatter_limit);
  const size_t scatter_shared = BinScatterShared(l, sub_chunk, row_bytes);
  if (Status s = CheckSharedMemory(scatter_shared, scatter_limit, "voxelize: bin scatter");
      !s.ok()) {
    return s;
  }
  BinScatterKernel<F><<<l.partitions, kScatterThreads, scatter_shared, stream>>>(a, l, w,
                                                                                sub_chunk);
  if (Status s = Status::LastCuda("voxelize bin scatter kernel launch"); !s.ok()) return s;

  const size_t tile_shared = 3 * kTileVoxels * sizeof(int32_t);
  size_t writer_limit = 0;
  if (Status s = AllowSharedMemory(&WriteBinKernel<F>,
                                   "voxelize: shared memory of the tile writer", &writer_limit);
      !s.ok()) {
    return s;
  }
  if (Status s = CheckSharedMemory(tile_shared, writer_limit, "voxelize: tile writer");
      !s.ok()) {
    return s;
  }
  WriteBinKernel<F><<<l.bins, kWriteThreads, tile_shared, stream>>>(a, l, w, mean);
  if (Status s = Status::LastCuda("voxelize tile writer kernel launch"); !s.ok()) return s;
  if (l.total < 3) return Status();
  VoxelArgs bucket = a;  // the heavy runs index the feature rows copied to the bucket
  bucket.features = w.bucket_row;
  bucket.features_stride = 0;
  HeavySumKernel<F><<<std::min(Blocks(l.total / 3), kMaxHeavyBlocks), kThreads, 0, stream>>>(
      bucket, w.heavy_point, mean, w.heavy, w.counters + kHeavyRuns);
  return Status::LastCuda("voxelize heavy sum kernel launch");
}

// The workspace of `clouds` clouds (row_bytes: one point's features): none
// for a batch that does not bin (the handler refuses it), else
// BinnedWorkspace (sub-additive in the clouds: total and bins are; counts is
// sized for kMaxPartitions).
size_t BinnedWorkspaceBound(int64_t clouds, int64_t N, int64_t V, size_t row_bytes) {
  if (!Binnable(clouds, N, V)) return 0;
  return BinnedWorkspace(MakeBinLayout(clouds, N, V), row_bytes);
}

}  // namespace

Status LaunchVoxelizeBinned(cudaStream_t stream, const VoxelizeCall& call, ElemType features,
                            bool mean, const WorkspaceBuffer& workspace) {
  VoxelArgs a;
  if (Status s = MakeVoxelArgs(call, &a); !s.ok()) return s;
  const std::string what = std::to_string(a.B) + " clouds x " + std::to_string(a.N) +
                           " points on " + std::to_string(a.V) + " voxels";
  if (!Binnable(a.B, a.N, a.V)) {
    return Status::Invalid(
        "voxelize sum/mean: " + what +
        ": clouds x points and clouds x voxels must be < 2^31 in one call; split the batch");
  }
  return features == kBF16 ? LaunchBinned<__nv_bfloat16>(stream, workspace, a, what, mean)
              : LaunchBinned<float>(stream, workspace, a, what, mean);
}

}  // namespace voxelize

size_t VoxelizeBinnedWorkspaceBytes(int64_t num_clouds, int64_t num_points, int64_t num_voxels,
                                    int64_t feature_bytes) {
  const int64_t B = NonNegative(num_clouds), N = NonNegative(num_points);
  const int64_t V = NonNegative(num_voxels);
  const size_t row_bytes = static_cast<size_t>(NonNegative(feature_bytes));
  return voxelize::BinnedWorkspaceBound(B, N, V, row_bytes);
}

// One cloud's bound serves any shard (the bound is sub-additive), whatever num_clouds.
size_t VoxelizeBinnedWorkspacePerCloud(int64_t /*num_clouds*/, int64_t num_points,
                                       int64_t num_voxels, int64_t feature_bytes) {
  const int64_t N = NonNegative(num_points);
  const int64_t V = NonNegative(num_voxels);
  const size_t row_bytes = static_cast<size_t>(NonNegative(feature_bytes));
  return WorkspacePerCloud(
      [&](int64_t clouds) { return voxelize::BinnedWorkspaceBound(clouds, N, V, row_bytes); });
}

}  // namespace robocache
