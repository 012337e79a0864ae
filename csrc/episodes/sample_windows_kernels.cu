// sample_windows' kernel and launcher (sample_windows_kernels.h states the layout).
//
// Every window's descriptor and every delta travel by value in the kernel
// parameter struct (__grid_constant__; above 4 KiB, which CUDA >= 12.1 allows
// on every architecture we build for), so one launch covers all windows. The
// (row, entry) pairs of a window are flattened, g = b * K + k, and cut into
// tiles of whole rows (or, for K above the tile, of part of a row); one block
// per (window, tile), the windows' blocks one after the other: window means
// first, then the widest entries. A tile holds at most kTileEntries entries
// (kMeanTileEntries for window means) and about kBlockBytes of output, so wide
// streams (image embeddings) spread over many blocks.
// Per block, with the steps of jax_robocache/episodes/windows_twin.py:
//   1. each row's episode segment [start, start + n) of the flat arrays, and
//      for index windows the anchor's upper bound in it (one search per row);
//   2. one thread per entry plans it (interp_plan.cuh's PlanQuery on the
//      segment, as align does on an episode), writes valid and age;
//   3. the output rows: consecutive threads take consecutive vector chunks of
//      consecutive entries (coalesced stores), kUnroll chunks' loads in flight
//      per thread before any store; index windows of consecutive steps copy a
//      row inside its episode as one run of K samples (WriteRuns).
// Searches guess from the segment's first and last stamp and gallop
// (interp_plan.cuh's Interpolate): the twin's bisection result on the sorted
// times a store holds, in a few nearby loads instead of a chain across the episode.
// A window_mean entry sums its samples sequentially from the first, kSumLoads
// loads in flight (the twin uses a segment tree: equal up to float rounding).
#include "episodes/sample_windows_kernels.h"

#include <algorithm>
#include <limits>

#include "common/elem.cuh"
#include "streams/interp_plan.cuh"
#include "streams/row_ops.cuh"
#include "streams/stream_rules.cuh"

namespace robocache {
namespace {

constexpr int kThreads = 256;
// The kernel's registers (ptxas -v) allow 2 blocks of 256 threads per SM, so tiles are large:
// a block's critical path is one chain of dependent searches, and fewer blocks mean fewer
// such waves.
constexpr int kTileEntries = 1024;
constexpr int64_t kBlockBytes = 64 * 1024;
constexpr int kUnroll = 4;
// Index windows with runs: rows per tile (two per warp) and a lane's loads in flight.
constexpr int64_t kRunRows = 2 * kThreads / 32;
constexpr int kCopyUnroll = 8;
// Window means: entries per block (a window's plan is a long chain of dependent searches, so
// its entries spread over many blocks), and the loads of a window's sum in flight at once.
constexpr int64_t kMeanTileEntries = 32;
constexpr int kSumLoads = 4;

struct WindowLaunch : WindowDesc {
  int64_t first_block;  // the window's first block
  int64_t tile;         // entries per block
  // An index window whose steps are consecutive (s0, s0 + 1, ...), without a mask, in tiles
  // of whole rows: a row whose steps all fall inside its episode reads one run of K samples
  // and is copied as such (RowInfo::first).
  int32_t runs;
};

struct Args {
  WindowLaunch windows[kMaxWindows];
  double deltas[kMaxWindowEntries];
  const int32_t* episode;
  const void* anchor;
  int64_t B;
  int32_t num_windows;
};

struct RowInfo {
  int32_t start, n;  // the episode's segment of the flat arrays
  int32_t ub;        // index windows: samples with t <= anchor - offset
  int32_t first;     // runs: the store row of the row's first entry when all K are inside
                     // the episode (every entry valid, sample first + k), else -1
};

// Step 1: the segment of episode e (n = 0 for an episode outside [0, E)).
__device__ RowInfo Segment(const WindowLaunch& w, int64_t b, int32_t e) {
  RowInfo r{0, 0, 0, -1};
  if (e < 0 || e >= w.E) return r;
  const int32_t* off = w.offsets + b * w.offsets_stride;
  const int64_t N = w.N;
  const int64_t start = min(max(static_cast<int64_t>(off[e]), int64_t{0}), N);
  const int64_t stop = min(max(static_cast<int64_t>(off[e + 1]), start), N);
  const int64_t L = w.max_length < 0 ? N : min(w.max_length, N);
  r.start = static_cast<int32_t>(start);
  r.n = static_cast<int32_t>(min(stop - start, L));
  return r;
}

// Step 2, time windows: align's plan of one query on the segment (t, m are
// the segment's times and mask, or null), with its valid and age.
template <typename TT>
__device__ Plan PlanTime(const WindowLaunch& w, const TT* t, const bool* m, int32_t n,
                         TT anchor, double delta, float* age_out) {
  // q = anchor + delta, one rounding; the stream is read at q - offset.
  const TT q = (anchor + static_cast<TT>(delta)) - static_cast<TT>(w.offset);
  const int32_t plan_method = w.method == kWindowMean ? kPrevious : w.method;
  const int32_t plan_oor = w.oor == kZeroOor ? kClamp : w.oor;
  int32_t ub;
  Plan p = PlanQuery<Interpolate>(t, n, q, plan_method, plan_oor, &ub);
  float age;
  bool valid = ApplyStreamRules<Interpolate>(t, n, q, w.method, static_cast<TT>(w.window),
                                             static_cast<TT>(w.tolerance), p, age, ub);
  if (valid && m != nullptr) {  // a masked sample read invalidates the entry
    if (p.kind == kWindowSum) {
      for (int32_t i = p.a; i < p.b; ++i) valid = valid && m[i];
    } else {
      valid = m[p.a] && (p.kind != kTwo || m[p.b]);
    }
  }
  p.valid = valid;
  *age_out = age;
  return p;
}

// Step 3, index windows: sample ub - 1 + step of the segment.
template <typename TT>
__device__ Plan PlanIndex(const TT* t, const bool* m, RowInfo r, TT qa, double step,
                          float* age_out) {
  const int64_t index = static_cast<int64_t>(r.ub) - 1 + static_cast<int64_t>(step);
  const bool nan_anchor = qa != qa;
  bool valid = index >= 0 && index < r.n && !nan_anchor;
  const int64_t last = r.n > 0 ? r.n - 1 : 0;
  const int32_t i = static_cast<int32_t>(min(max(index, int64_t{0}), last));
  float age = std::numeric_limits<float>::infinity();
  if (r.n > 0) {
    age = static_cast<float>(qa - t[i]);
    if (valid && m != nullptr) valid = m[i];
  }
  if (nan_anchor) age = QuietNan<float>();
  Plan p{i, i, 0.0, nan_anchor ? kNanOut : (r.n > 0 ? kOne : kZeroOut), valid};
  *age_out = age;
  return p;
}

// align's interpolation expression, so time windows equal align's kernel bit for bit (the
// compiler contracts it alike; the jnp twin may round the product separately: 1 ulp).
template <typename Acc>
__device__ __forceinline__ Acc Lerp(Acc x, Acc y, Acc w) {
  return x + w * (y - x);
}

// Elements from values to the store copy of flat entry g's row (0 for a shared store,
// which skips the division).
__device__ __forceinline__ int64_t StoreOffset(const WindowDesc& w, int64_t g, int64_t K) {
  return w.values_stride == 0 ? 0 : (g / K) * w.values_stride;
}

// The output of an entry without a sample: NaN (kNanOut, XLA's bits) or 0 (kZeroOut) in
// every element.
template <typename V, int N>
__device__ __forceinline__ Vec<V, N> FillVec(int32_t kind) {
  using E = Elem<V>;
  using Acc = typename E::Acc;
  const V fill = kind == kNanOut ? CanonicalNan<V>() : E::store(Acc(0));
  Vec<V, N> r;
#pragma unroll
  for (int e = 0; e < N; ++e) r.v[e] = fill;
  return r;
}

// A tile's output as (entry, vector chunk) units: unit u is chunk c of entry j
// (flat entry g0 + j). units < 2^31 (count * D * item <= kBlockBytes when count > 1,
// D < 2^23), so 32-bit divisions find a unit's entry.
template <typename V, int N>
struct TileUnits {
  using VecV = Vec<V, N>;
  const WindowLaunch& w;
  int64_t g0, chunks, units;
  uint32_t chunks32;
  __device__ TileUnits(const WindowLaunch& w_, int32_t count, int64_t g0_)
      : w(w_), g0(g0_), chunks(w_.D / N), units(count * (w_.D / N)),
        chunks32(static_cast<uint32_t>(w_.D / N)) {}
  __device__ int32_t entry(int64_t u) const {
    return static_cast<int32_t>(static_cast<uint32_t>(u) / chunks32);
  }
  // Entry j's rows of the store (its row's episode copy, or the shared store), as vectors.
  __device__ const VecV* rows(int32_t j) const {
    return reinterpret_cast<const VecV*>(static_cast<const V*>(w.values) +
                                         StoreOffset(w, g0 + j, w.K));
  }
  __device__ void store(int32_t j, int64_t c, const VecV& r) const {
    reinterpret_cast<VecV*>(static_cast<V*>(w.out) + (g0 + j) * w.D)[c] = r;
  }
};

// Step 3 of the output (index windows, linear / nearest / previous): entries
// [0, count) of the tile, values of type V read and written N elements per
// access. Entry j is flat entry g0 + j.
template <typename V, int N>
__device__ void WriteEntries(const WindowLaunch& w, const Plan* plans, int32_t count,
                             int64_t g0) {
  using E = Elem<V>;
  using Acc = typename E::Acc;
  using VecV = Vec<V, N>;
  const TileUnits<V, N> tile(w, count, g0);
  for (int64_t u0 = threadIdx.x; u0 < tile.units; u0 += int64_t{kThreads} * kUnroll) {
    VecV ra[kUnroll], rb[kUnroll];
#pragma unroll
    for (int s = 0; s < kUnroll; ++s) {  // loads of one- and two-sample plans
      const int64_t u = u0 + int64_t{s} * kThreads;
      if (u >= tile.units) continue;
      const int32_t j = tile.entry(u);
      const int64_t c = u - j * tile.chunks;
      const Plan& p = plans[j];
      const VecV* rows = tile.rows(j);
      if (p.kind == kOne || p.kind == kTwo) ra[s] = rows[p.a * tile.chunks + c];
      if (p.kind == kTwo) rb[s] = rows[p.b * tile.chunks + c];
    }
#pragma unroll
    for (int s = 0; s < kUnroll; ++s) {  // arithmetic and stores
      const int64_t u = u0 + int64_t{s} * kThreads;
      if (u >= tile.units) continue;
      const int32_t j = tile.entry(u);
      const Plan& p = plans[j];
      VecV r;
      if (p.kind == kOne) {
        r = ra[s];  // the sample's bits as they are
      } else if (p.kind == kTwo) {
        const Acc wt = static_cast<Acc>(p.w);
#pragma unroll
        for (int e = 0; e < N; ++e) {
          r.v[e] = E::store(Lerp(E::load(ra[s].v[e]), E::load(rb[s].v[e]), wt));
        }
      } else {
        r = FillVec<V, N>(p.kind);
      }
      tile.store(j, u - j * tile.chunks, r);
    }
  }
}

// Step 3 of window_mean windows: one (entry, chunk) unit at a time; a window's
// samples are summed sequentially from the first.
template <typename V, int N>
__device__ void WriteMeans(const WindowLaunch& w, const Plan* plans, int32_t count, int64_t g0) {
  using E = Elem<V>;
  using Acc = typename E::Acc;
  using VecV = Vec<V, N>;
  const TileUnits<V, N> tile(w, count, g0);
  for (int64_t u = threadIdx.x; u < tile.units; u += kThreads) {
    const int32_t j = tile.entry(u);
    const int64_t c = u - j * tile.chunks;
    const Plan p = plans[j];
    const VecV* col = tile.rows(j) + p.a * tile.chunks + c;
    VecV r;
    if (p.kind == kWindowSum) {
      Acc acc[N];
#pragma unroll
      for (int e = 0; e < N; ++e) acc[e] = Acc(0);
      // kSumLoads loads in flight, then added in sample order (the same sum as one at a time).
      int32_t i = p.a;
      for (; i + kSumLoads <= p.b; i += kSumLoads, col += kSumLoads * tile.chunks) {
        VecV v[kSumLoads];
#pragma unroll
        for (int s = 0; s < kSumLoads; ++s) v[s] = col[s * tile.chunks];
#pragma unroll
        for (int s = 0; s < kSumLoads; ++s) {
#pragma unroll
          for (int e = 0; e < N; ++e) acc[e] += E::load(v[s].v[e]);
        }
      }
      for (; i < p.b; ++i, col += tile.chunks) {
        const VecV v = *col;
#pragma unroll
        for (int e = 0; e < N; ++e) acc[e] += E::load(v.v[e]);
      }
      const Acc n = static_cast<Acc>(p.b - p.a);
#pragma unroll
      for (int e = 0; e < N; ++e) r.v[e] = E::store(acc[e] / n);
    } else if (p.kind == kOne) {  // an invalid window's previous sample
      r = *col;
    } else {
      r = FillVec<V, N>(p.kind);
    }
    tile.store(j, c, r);
  }
}

// Step 3 of index windows with runs: a warp per row. A row inside its episode is one copy of
// K * D contiguous elements (no per-entry plan: kCopyUnroll vector loads in flight per
// lane); another row writes entry by entry from its plans (kOne or a fill).
template <typename V, int N>
__device__ void WriteRuns(const WindowLaunch& w, const Plan* plans, const RowInfo* rows,
                          int32_t nrows, int64_t b0) {
  using VecV = Vec<V, N>;
  const int lane = threadIdx.x & 31;
  const int64_t chunks = w.D / N;
  const int64_t K = w.K;
  const int64_t run = K * chunks;  // vectors per row
  const uint32_t chunks32 = static_cast<uint32_t>(chunks);
  for (int32_t r = threadIdx.x >> 5; r < nrows; r += kThreads / 32) {
    const int64_t b = b0 + r;
    VecV* out = reinterpret_cast<VecV*>(static_cast<V*>(w.out) + b * K * w.D);
    const VecV* values = reinterpret_cast<const VecV*>(static_cast<const V*>(w.values) +
                                                       StoreOffset(w, b * K, K));
    const int32_t first = rows[r].first;
    if (first >= 0) {
      const VecV* src = values + first * chunks;
      for (int64_t u0 = lane; u0 < run; u0 += 32 * kCopyUnroll) {
        VecV v[kCopyUnroll];
#pragma unroll
        for (int s = 0; s < kCopyUnroll; ++s) {
          if (u0 + 32 * s < run) v[s] = src[u0 + 32 * s];
        }
#pragma unroll
        for (int s = 0; s < kCopyUnroll; ++s) {
          if (u0 + 32 * s < run) out[u0 + 32 * s] = v[s];
        }
      }
    } else {
      const Plan* row_plans = plans + r * K;
      for (int64_t u = lane; u < run; u += 32) {
        const int32_t k = static_cast<int32_t>(static_cast<uint32_t>(u) / chunks32);
        const int64_t c = u - k * chunks;
        const Plan& p = row_plans[k];
        out[u] = p.kind == kOne ? values[p.a * chunks + c] : FillVec<V, N>(p.kind);
      }
    }
  }
}

// Step 3 of entries of at least 32 vector chunks (embeddings): a warp per entry, lanes over
// its chunks (no division per chunk), kUnroll entries' loads in flight per lane.
template <typename V, int N>
__device__ void WriteWide(const WindowLaunch& w, const Plan* plans, int32_t count, int64_t g0) {
  using E = Elem<V>;
  using Acc = typename E::Acc;
  using VecV = Vec<V, N>;
  constexpr int kWarps = kThreads / 32;
  const TileUnits<V, N> tile(w, count, g0);
  const int lane = threadIdx.x & 31;
  for (int32_t j0 = threadIdx.x >> 5; j0 < count; j0 += kWarps * kUnroll) {
    for (int64_t c = lane; c < tile.chunks; c += 32) {
      VecV ra[kUnroll], rb[kUnroll];
#pragma unroll
      for (int s = 0; s < kUnroll; ++s) {  // loads of one- and two-sample plans
        const int32_t j = j0 + s * kWarps;
        if (j >= count) continue;
        const Plan& p = plans[j];
        const VecV* rows = tile.rows(j);
        if (p.kind == kOne || p.kind == kTwo) ra[s] = rows[p.a * tile.chunks + c];
        if (p.kind == kTwo) rb[s] = rows[p.b * tile.chunks + c];
      }
#pragma unroll
      for (int s = 0; s < kUnroll; ++s) {  // arithmetic and stores
        const int32_t j = j0 + s * kWarps;
        if (j >= count) continue;
        const Plan& p = plans[j];
        VecV r;
        if (p.kind == kOne) {
          r = ra[s];
        } else if (p.kind == kTwo) {
          const Acc wt = static_cast<Acc>(p.w);
#pragma unroll
          for (int e = 0; e < N; ++e) {
            r.v[e] = E::store(Lerp(E::load(ra[s].v[e]), E::load(rb[s].v[e]), wt));
          }
        } else {
          r = FillVec<V, N>(p.kind);
        }
        tile.store(j, c, r);
      }
    }
  }
}

template <typename V, int N>
__device__ void WriteRows(const WindowLaunch& w, const Plan* plans, int32_t count, int64_t g0,
                          const RowInfo* rows, int32_t nrows, int64_t b0) {
  if (w.runs) WriteRuns<V, N>(w, plans, rows, nrows, b0);
  else if (w.kind == kTimeWindow && w.method == kWindowMean) WriteMeans<V, N>(w, plans, count, g0);
  else if (w.D / N >= 32) WriteWide<V, N>(w, plans, count, g0);
  else WriteEntries<V, N>(w, plans, count, g0);
}

// Step 3 of slerp windows (D == 4): one thread per entry.
template <typename V>
__device__ void WriteSlerp(const WindowLaunch& w, const Plan* plans, int32_t count, int64_t g0) {
  const V* values = static_cast<const V*>(w.values);
  V* out = static_cast<V*>(w.out);
  for (int32_t j = threadIdx.x; j < count; j += kThreads) {
    const Plan p = plans[j];
    V* o = out + (g0 + j) * 4;
    if (p.kind == kNanOut || p.kind == kZeroOut) {
      const Vec<V, 4> fill = FillVec<V, 4>(p.kind);
      for (int k = 0; k < 4; ++k) o[k] = fill.v[k];
    } else {
      const V* rows = values + StoreOffset(w, g0 + j, w.K);
      SlerpRow(rows + p.a * 4, rows + p.b * 4, p.w, p.kind, o);
    }
  }
}

template <typename V>
__device__ void WriteWindow(const WindowLaunch& w, const Plan* plans, int32_t count,
                            int64_t g0, const RowInfo* rows, int32_t nrows, int64_t b0) {
  if (w.method == kSlerp && w.kind == kTimeWindow) {
    WriteSlerp<V>(w, plans, count, g0);
    return;
  }
  const int vec = w.vec_bytes / static_cast<int>(sizeof(V));
  if constexpr (sizeof(V) <= 16) {
    if (vec == 16 / sizeof(V)) return WriteRows<V, 16 / sizeof(V)>(w, plans, count, g0, rows, nrows, b0);
  }
  if constexpr (sizeof(V) <= 8) {
    if (vec == 8 / sizeof(V)) return WriteRows<V, 8 / sizeof(V)>(w, plans, count, g0, rows, nrows, b0);
  }
  if constexpr (sizeof(V) <= 4) {
    if (vec == 4 / sizeof(V)) return WriteRows<V, 4 / sizeof(V)>(w, plans, count, g0, rows, nrows, b0);
  }
  WriteRows<V, 1>(w, plans, count, g0, rows, nrows, b0);
}

template <typename TT>
__global__ void __launch_bounds__(kThreads) SampleWindowsKernel(const __grid_constant__ Args args) {
  __shared__ Plan plans[kTileEntries];
  __shared__ RowInfo rows[kTileEntries];
  int wi = 0;
  while (wi + 1 < args.num_windows && blockIdx.x >= args.windows[wi + 1].first_block) ++wi;
  const WindowLaunch& w = args.windows[wi];
  const int64_t K = w.K;
  const int64_t g0 = (blockIdx.x - w.first_block) * w.tile;  // first flat entry of the tile
  const int32_t count = static_cast<int32_t>(min(w.tile, args.B * K - g0));
  const int64_t b0 = g0 / K;
  const int32_t nrows = static_cast<int32_t>((g0 + count - 1) / K - b0 + 1);
  const TT* anchors = static_cast<const TT*>(args.anchor);
  const TT* times = static_cast<const TT*>(w.times);
  const TT offset = static_cast<TT>(w.offset);
  for (int32_t r = threadIdx.x; r < nrows; r += kThreads) {  // step 1
    const int64_t b = b0 + r;
    RowInfo info = Segment(w, b, args.episode[b]);
    if (w.kind == kIndexWindow) {
      const TT qa = anchors[b] - offset;
      info.ub = Interpolate::Upper(times + b * w.times_stride + info.start, info.n, qa);
      // PlanIndex's rule for every entry at once: valid (inside, anchor not NaN), sample
      // i0 + k of the segment.
      const int64_t i0 = static_cast<int64_t>(info.ub) - 1 +
                         static_cast<int64_t>(args.deltas[w.first_delta]);
      if (w.runs && qa == qa && i0 >= 0 && i0 + K <= info.n) {
        info.first = static_cast<int32_t>(info.start + i0);
      }
    }
    rows[r] = info;
  }
  __syncthreads();
  for (int32_t j = threadIdx.x; j < count; j += kThreads) {  // step 2
    const int64_t g = g0 + j;
    const int64_t b = g / K;
    const int32_t k = static_cast<int32_t>(g - b * K);
    const RowInfo info = rows[b - b0];
    const TT* t = times + b * w.times_stride + info.start;
    const bool* m = w.mask != nullptr ? w.mask + b * w.mask_stride + info.start : nullptr;
    const double delta = args.deltas[w.first_delta + k];
    float age;
    Plan p = w.kind == kTimeWindow
                 ? PlanTime<TT>(w, t, m, info.n, anchors[b], delta, &age)
                 : PlanIndex<TT>(t, m, info, anchors[b] - offset, delta, &age);
    if (!p.valid) {  // step 4: out_of_range fills every invalid entry
      if (w.oor == kNan) p.kind = kNanOut;
      else if (w.oor == kZeroOor) p.kind = kZeroOut;
    }
    // Segment rows -> rows of the store copy (every read stays in [0, N)).
    const int32_t last = static_cast<int32_t>(w.N > 0 ? w.N - 1 : 0);
    if (p.kind == kWindowSum) {
      p.a += info.start;
      p.b += info.start;
    } else {
      p.a = min(max(info.start + p.a, 0), last);
      p.b = min(max(info.start + p.b, 0), last);
    }
    w.valid[g] = p.valid;
    w.age[g] = age;
    plans[j] = p;
  }
  __syncthreads();
  switch (w.value_type) {  // step 3
    case kF32: WriteWindow<float>(w, plans, count, g0, rows, nrows, b0); break;
    case kF64: WriteWindow<double>(w, plans, count, g0, rows, nrows, b0); break;
    case kBF16: WriteWindow<__nv_bfloat16>(w, plans, count, g0, rows, nrows, b0); break;
    default: WriteWindow<__half>(w, plans, count, g0, rows, nrows, b0); break;
  }
}

}  // namespace

Status LaunchSampleWindows(cudaStream_t stream, const SampleWindowsCall& call, int64_t B,
                           ElemType time_type) {
  Args a{};
  a.episode = call.episode;
  a.anchor = call.anchor;
  a.B = B;
  a.num_windows = call.num_windows;
  std::copy(call.deltas, call.deltas + kMaxWindowEntries, a.deltas);
  for (int k = 0; k < call.num_windows; ++k) {
    static_cast<WindowDesc&>(a.windows[k]) = call.windows[k];
  }
  // Window means first (the longest chain per entry: two searches, then the sum), then the
  // widest entries: the blocks that take longest start first, the small windows' fill the tail.
  const auto is_mean = [](const WindowLaunch& w) {
    return w.kind == kTimeWindow && w.method == kWindowMean;
  };
  std::stable_sort(a.windows, a.windows + a.num_windows,
                   [&](const WindowLaunch& x, const WindowLaunch& y) {
                     if (is_mean(x) != is_mean(y)) return is_mean(x);
                     return x.D * ItemBytes(static_cast<ElemType>(x.value_type)) >
                            y.D * ItemBytes(static_cast<ElemType>(y.value_type));
                   });
  int64_t blocks = 0;
  for (int k = 0; k < a.num_windows; ++k) {
    WindowLaunch& w = a.windows[k];
    const int64_t entry_bytes =
        std::max<int64_t>(w.D * ItemBytes(static_cast<ElemType>(w.value_type)), 1);
    const int64_t max_entries = is_mean(w) ? kMeanTileEntries : kTileEntries;
    const int64_t per_block =
        std::max<int64_t>(1, std::min<int64_t>(max_entries, kBlockBytes / entry_bytes));
    w.tile = w.K <= per_block ? per_block / w.K * w.K : per_block;
    w.runs = 0;
    if (w.kind == kIndexWindow && w.mask == nullptr && w.K <= per_block) {
      bool consecutive = true;
      for (int64_t k = 1; k < w.K; ++k) {
        consecutive = consecutive && a.deltas[w.first_delta + k] == a.deltas[w.first_delta] + k;
      }
      if (consecutive) {
        w.runs = 1;
        w.tile = std::min<int64_t>(w.tile, kRunRows * w.K);
      }
    }
    w.first_block = blocks;
    blocks += CeilDiv(B * w.K, w.tile);
  }
  if (blocks > 0x7fffffffLL) {
    return Status::Invalid("sample_windows: too many rows x entries for one launch (" +
                           std::to_string(blocks) + " blocks)");
  }
  if (time_type == kF64) {
    SampleWindowsKernel<double><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a);
  } else {
    SampleWindowsKernel<float><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a);
  }
  return Status::LastCuda("sample_windows kernel launch");
}

}  // namespace robocache
