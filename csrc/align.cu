// align: many sensor streams evaluated on one query clock, in ONE launch.
//
// Layout (canonical shapes built by jax_robocache/align.py), K streams:
//   queries       [Bq, T]        f32 | f64, Bq in {1, B}
//   per stream k, three arguments (RemainingArgs):
//     values_k    [B, S_k, D_k]  f32 | bf16 | f16 | f64
//     times_k     [Bt_k, S_k]    dtype of queries, Bt_k in {1, B}
//     lengths_k   [Bl_k]         s32, Bl_k in {1, B}; negative: queries NaN (unresolved)
//   results (RemainingRets), per stream k unless `concatenated`:
//     out_k       [B, T, D_k]    dtype of values_k
//     valid_k     [B, T]         pred
//     age_k       [B, T]         f32
//   with `concatenated` = 1 instead: first one out [B, T, sum_k D_k] (each
//   stream's own dtype, or f32 for bf16/f16 streams),
//   stream k writing its columns from columns[k]; then valid_k, age_k.
//   attributes: methods[K] s32, offsets[K] / tolerances[K] / windows[K] f64
//   (tolerance +inf = none), columns[K] s64, out_of_range s32,
//   concatenated s32. At most kMaxStreams streams.
//
// Every stream's descriptor (pointers, S, D, dtype, method, offset, ...)
// travels by value in the kernel parameter struct, so one launch covers all
// streams. The launch shape is a compile-time tuning (AlignTune below, picked
// by `using AlignTuning`; benchmarks/kernels/run_align_variants.sh times each):
//   interleaved (default): one block per (stream, episode, tile of kTile
//     queries); the K blocks of a tile are consecutive (widest stream first),
//     so the narrow streams' short, latency-bound blocks run beside the wide
//     ones instead of before them, and a tile's concatenated rows are written
//     at about the same time (partial 32-byte sectors merge in L2);
//   per stream: grid (B * tiles, K), blockIdx.y picks the stream, the widest
//     output row first;
//   fused: one block per tile for every stream (equal blocks; the stream loop
//     costs registers: the descriptor index is no longer uniform).
// Per block: phase 1 copies the episode's timestamps into shared memory with
// cp.async (every copy in flight before one wait; streams whose times do
// not fit search global memory), then plans each (stream, query)
// (PlanQuery of interp_plan.cuh, plus the age, the window of window_mean and
// the tolerance check); phase 2 streams the output rows: groups of lanes
// cover consecutive chunks of up to 16 bytes of a row, and each thread loads
// a batch of its (row, chunk) units before it converts and stores any of
// them (kBatch units of loads in flight per thread).
// The mean of a window is summed sequentially from its first sample
// (deterministic). In concatenated mode a value is rounded to the stream's
// dtype first and then converted to the output dtype, so the result equals
// concatenating the per-stream outputs. Every tuning computes the same bits.
#include "align.h"

#include <cuda_pipeline.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

#include "ffi_common.h"
#include "interp_plan.cuh"
#include "row_ops.cuh"

namespace robocache {
namespace {

constexpr int kThreads = 256;
// Shared memory per block: plans + staged timestamps stay within the 48 KiB
// a launch gets without opting in.
constexpr int64_t kSmemBudget = 48 * 1024;
// Streams per call; must match MAX_STREAMS in jax_robocache/align.py. The
// parameter struct stays far below the 4 KiB kernel parameter limit.
constexpr int kMaxStreams = 16;
// Method code of window_mean (jax_robocache/align.py), after interp_plan's.
constexpr int32_t kWindowMean = 4;
// Plan kind of a non-empty window: the mean of samples [a, b).
constexpr int32_t kWindowSum = 4;

// The launch shape (see the top of this file):
//   Mode        kInterleaved: one block per (stream, tile), the K streams of a
//               tile in consecutive blocks (stream = blockIdx.x % K);
//               kPerStream: grid (B * tiles, K), stream = blockIdx.y, the widest
//               output row first; kFused: one block per tile for every stream
//   Tile        queries per block
//   Batch       (row, chunk) units whose loads a thread issues before its first store
//   MinBlocks   __launch_bounds__ minimum blocks per multiprocessor (caps registers:
//               3 -> 80, 2 -> 128); the batch's loads must stay in registers (a spill
//               of them serialises the loads: see the SASS check of run_align_variants.sh)
//   Streaming   output stores marked evict-first (st.global.cs)
//   WideLoads   16-byte loads of 16-bit values widened to f32 (two 16-byte stores a chunk)
enum AlignMode : int { kInterleaved = 0, kPerStream = 1, kFused = 2 };
template <int Mode, int Tile, int Batch, int MinBlocks, bool Streaming = false,
          bool WideLoads = false>
struct AlignTune {
  static constexpr int kMode = Mode;
  static constexpr int kTile = Tile;
  static constexpr int kBatch = Batch;
  static constexpr int kMinBlocks = MinBlocks;
  static constexpr bool kStreaming = Streaming;
  static constexpr bool kWideLoads = WideLoads;
};

// The tuning the FFI handler launches: the one-line switch (the variants timed
// by benchmarks/kernels/run_align_variants.sh are listed in align_variants.cu).
// Picked by benchmarks/kernels/pick_align_variant.py on an H200 (2026-11-22):
// fastest bit-exact variant over fuse_T250 / fuse_T50 / mixed_T250, 81.6 / 26.3-28.9 /
// 91.1 us against 99.2 / 37 / 106.8 us for the kernel before the rework.
using AlignTuning = AlignTune<kInterleaved, 64, 4, 3, false, true>;

enum ValueType : int32_t { kF32 = 0, kF64 = 1, kBF16 = 2, kF16 = 3 };

struct StreamDesc {
  const void* values;
  const void* times;
  const int32_t* lengths;
  void* out;  // this stream's first output column
  bool* valid;
  float* age;
  int64_t S, D;
  int64_t out_stride;  // elements between output rows (D, or sum D when concatenated)
  int64_t times_stride, lengths_stride;  // 0 when shared by all episodes
  double offset, tolerance, window;
  int32_t method, value_type, out_type;
  int32_t item, out_item;  // bytes per value / output element
  int32_t aligned;         // values and output columns allow 16-byte vectors
  // Set by LayOut for the tuning:
  int32_t vec;          // elements per vector access, or 1
  int32_t chunks;       // vectors per row (D / vec)
  int32_t lane_shift;   // log2 of the threads that share one row (<= 5)
  int32_t chunk_shift;  // log2 of a lane's chunks per row (rounded up to a power of two)
  int32_t stage_offset; // byte offset of the staged times in shared memory, or -1: global
};

struct AlignArgs {
  StreamDesc streams[kMaxStreams];
  const void* queries;
  int64_t T, tiles, queries_stride;
  int32_t K, oor;
  int32_t plan_bytes;  // shared memory before the staged times
};

__device__ __forceinline__ int32_t EpisodeLength(const StreamDesc& s, int64_t b) {
  const int32_t n = s.lengths[b * s.lengths_stride];
  return n < 0 ? 0 : (n > s.S ? static_cast<int32_t>(s.S) : n);
}

// Phase 1a: queues the copy of the episode's timestamps into shared memory.
template <typename TT>
__device__ void StageTimes(const StreamDesc& s, int64_t b, unsigned char* smem) {
  if (s.stage_offset < 0) return;
  const TT* t = static_cast<const TT*>(s.times) + b * s.times_stride;
  TT* staged = reinterpret_cast<TT*>(smem + s.stage_offset);
  const int32_t n = EpisodeLength(s, b);
  for (int32_t k = threadIdx.x; k < n; k += blockDim.x) {
    __pipeline_memcpy_async(staged + k, t + k, sizeof(TT));
  }
}

// Phase 1b: the plan of query j of the tile for stream `s`; writes valid and age.
template <typename TT>
__device__ Plan PlanOne(const StreamDesc& s, const AlignArgs& args, int64_t b, int64_t q0,
                        int32_t j, const unsigned char* smem) {
  const TT* t = s.stage_offset >= 0 ? reinterpret_cast<const TT*>(smem + s.stage_offset)
                                    : static_cast<const TT*>(s.times) + b * s.times_stride;
  const int32_t n = EpisodeLength(s, b);
  const TT* qs = static_cast<const TT*>(args.queries) + b * args.queries_stride + q0;
  const TT offset = static_cast<TT>(s.offset);
  const TT tolerance = static_cast<TT>(s.tolerance);
  const TT window = static_cast<TT>(s.window);
  const int32_t plan_method = s.method == kWindowMean ? kPrevious : s.method;
  // The stream's sample times are times + offset: evaluate it at q - offset.
  // A negative length marks an episode whose timestamps the time dtype cannot
  // resolve (streams/timestamps.py): each of its queries is treated as NaN.
  const TT q = s.lengths[b * s.lengths_stride] < 0 ? QuietNan<TT>() : qs[j] - offset;
  Plan p = PlanQuery(t, n, q, plan_method, args.oor);
  const int32_t ub = UpperBound(t, n, q);  // samples at or before q
  const int32_t latest = ub > 0 ? ub - 1 : 0;
  float age = std::numeric_limits<float>::infinity();
  if (q != q) age = QuietNan<float>();
  else if (ub > 0) age = static_cast<float>(q - t[latest]);
  bool valid = p.valid;
  if (valid && s.method == kWindowMean) {
    const int32_t lo = UpperBound(t, n, q - window);  // first t > q - window
    if (lo < ub) {
      p.kind = kWindowSum;
      p.a = lo;
      p.b = ub;
    } else {
      valid = false;  // empty window: the previous sample's plan stays
    }
  }
  if (valid) {
    TT dist;
    if (s.method == kPrevious) dist = q - t[p.a];
    else if (s.method == kNearest) dist = fabs(q - t[p.a]);
    else if (s.method == kWindowMean) dist = q - t[latest];
    else dist = p.kind == kTwo ? t[p.b] - t[p.a] : TT(0);  // linear, slerp
    valid = !(dist > tolerance);
  }
  if (!valid && args.oor == kNan) p.kind = kNanOut;
  p.valid = valid;
  const int64_t row = b * args.T + q0 + j;
  s.valid[row] = valid;
  s.age[row] = age;
  return p;
}

// Converts a value already rounded to the stream's dtype V to the output dtype O (exact).
template <typename V, typename O>
__device__ __forceinline__ O Convert(V v) {
  if constexpr (std::is_same_v<V, O>) {
    return v;
  } else {
    return Elem<O>::store(static_cast<typename Elem<O>::Acc>(Elem<V>::load(v)));
  }
}

// Rounds r (accumulation type) to V, then converts to O.
template <typename V, typename O>
__device__ __forceinline__ O Round(typename Elem<V>::Acc r) {
  return Convert<V, O>(Elem<V>::store(r));
}

// One plain or evict-first (st.global.cs) store of a 2/4/8/16-byte vector.
template <bool kCs, typename T>
__device__ __forceinline__ void StoreVec(T* dst, const T& v) {
  if constexpr (kCs) {
    using Bits = std::conditional_t<sizeof(T) == 16, uint4, std::conditional_t<sizeof(T) == 8, uint2,
                 std::conditional_t<sizeof(T) == 4, unsigned, unsigned short>>>;
    static_assert(sizeof(Bits) == sizeof(T), "2, 4, 8 or 16 bytes");
    Bits bits;
    memcpy(&bits, &v, sizeof(T));
    __stcs(reinterpret_cast<Bits*>(dst), bits);
  } else {
    *dst = v;
  }
}

// Stores r[0..N) at dst (aligned to min(N * sizeof(O), 16) bytes) in accesses of <= 16 bytes.
template <typename O, int N, bool kCs>
__device__ __forceinline__ void StoreChunk(O* dst, const O (&r)[N]) {
  constexpr int P = N * sizeof(O) > 16 ? 16 / static_cast<int>(sizeof(O)) : N;
#pragma unroll
  for (int i = 0; i < N; i += P) {
    Vec<O, P> v;
#pragma unroll
    for (int e = 0; e < P; ++e) v.v[e] = r[i + e];
    StoreVec<kCs>(reinterpret_cast<Vec<O, P>*>(dst + i), v);
  }
}

// Phase 2 of slerp and window_mean streams: the tile's output rows of stream
// `s`, values of type V, output of type O, N elements per access (one unit at a time).
template <typename V, typename O, int N, bool kCs>
__device__ void WriteRows(const StreamDesc& s, const Plan* plans, int32_t nq,
                          int64_t b, int64_t row0) {
  using E = Elem<V>;
  using Acc = typename E::Acc;
  using VecV = Vec<V, N>;
  const int64_t D = s.D, stride = s.out_stride;
  const V* vals = static_cast<const V*>(s.values) + b * s.S * D;
  O* out = static_cast<O*>(s.out) + row0 * stride;
  if (s.method == kSlerp) {  // D == 4, one thread per query
    for (int32_t j = threadIdx.x; j < nq; j += blockDim.x) {
      const Plan p = plans[j];
      O* o = out + j * stride;
      if (p.kind == kNanOut || p.kind == kZeroOut) {
        const O fill = Round<V, O>(p.kind == kNanOut ? QuietNan<Acc>() : Acc(0));
        for (int k = 0; k < 4; ++k) o[k] = fill;
      } else {
        V r[4];
        SlerpRow(vals + p.a * 4, vals + p.b * 4, p.w, p.kind, r);
        for (int k = 0; k < 4; ++k) o[k] = Convert<V, O>(r[k]);
      }
    }
    return;
  }
  const int32_t lanes = 1 << s.lane_shift;
  const int32_t lane = threadIdx.x & 31;
  const int32_t first_chunk = lane & (lanes - 1);
  const int32_t rows_per_warp = 32 >> s.lane_shift;
  const int32_t row_step = (blockDim.x >> 5) * rows_per_warp;
  const int32_t chunks = s.chunks;
  for (int32_t j = (threadIdx.x >> 5) * rows_per_warp + (lane >> s.lane_shift); j < nq;
       j += row_step) {
    const Plan p = plans[j];
    const VecV* ra = reinterpret_cast<const VecV*>(vals + p.a * D);
    O* o = out + j * stride;
    for (int32_t c = first_chunk; c < chunks; c += lanes) {
      O res[N];
      if (p.kind == kWindowSum) {
        const Acc count = static_cast<Acc>(p.b - p.a);
        Acc acc[N];
#pragma unroll
        for (int e = 0; e < N; ++e) acc[e] = Acc(0);
        const VecV* col = ra + c;  // chunk c of row a; rows are `chunks` apart
        for (int32_t r = p.a; r < p.b; ++r, col += chunks) {
          const VecV v = *col;
#pragma unroll
          for (int e = 0; e < N; ++e) acc[e] += E::load(v.v[e]);
        }
#pragma unroll
        for (int e = 0; e < N; ++e) res[e] = Round<V, O>(acc[e] / count);
      } else if (p.kind == kOne) {  // an invalid window's previous sample
        const VecV va = ra[c];
#pragma unroll
        for (int e = 0; e < N; ++e) res[e] = Convert<V, O>(va.v[e]);
      } else {
        const O fill = Round<V, O>(p.kind == kNanOut ? QuietNan<Acc>() : Acc(0));
#pragma unroll
        for (int e = 0; e < N; ++e) res[e] = fill;
      }
      StoreChunk<O, N, kCs>(o + c * N, res);
    }
  }
}

// Raw bits of `Bytes` bytes of values, held in 32-bit registers (a bf16 x 4
// vector in two registers, not four) until the store phase unpacks them.
template <int Bytes>
struct RawBits;
template <> struct RawBits<16> { using T = uint4; };
template <> struct RawBits<8> { using T = uint2; };
template <> struct RawBits<4> { using T = unsigned; };
template <> struct RawBits<2> { using T = unsigned short; };

// Phase 2 of linear / nearest / previous streams. A thread owns the units
// (row j0 + r * row_step, chunk c0 + (k << lane_shift)), k < 2^chunk_shift,
// and takes them kBatch at a time: every load of a batch is issued before
// the first conversion and store.
template <typename V, typename O, int N, int kBatch, bool kCs>
__device__ void WriteRowsBatched(const StreamDesc& s, const Plan* plans, int32_t nq,
                                 int64_t b, int64_t row0) {
  using E = Elem<V>;
  using Acc = typename E::Acc;
  using VecV = Vec<V, N>;
  using Raw = typename RawBits<static_cast<int>(sizeof(VecV))>::T;
  const int64_t D = s.D, stride = s.out_stride;
  const V* vals = static_cast<const V*>(s.values) + b * s.S * D;
  O* out = static_cast<O*>(s.out) + row0 * stride;
  const int32_t shift = s.lane_shift, lane = threadIdx.x & 31;
  const int32_t rows_per_warp = 32 >> shift;
  const int32_t row_step = (blockDim.x >> 5) * rows_per_warp;
  const int32_t j0 = (threadIdx.x >> 5) * rows_per_warp + (lane >> shift);
  const int32_t c0 = lane & ((1 << shift) - 1);
  const int32_t slots = 1 << s.chunk_shift, chunks = s.chunks;
  const int32_t rows = j0 < nq ? (nq - 1 - j0) / row_step + 1 : 0;  // rows of this thread
  for (int32_t r0 = 0, k0 = 0; r0 < rows;) {
    // Only the raw values stay in registers between the two passes; the
    // plan is read again from shared memory (keeps the batch within ~64 registers).
    Raw ra[kBatch], rb[kBatch];
    int32_t r = r0, k = k0;
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {  // loads only
      const int32_t c = c0 + (k << shift);
      if (r < rows && c < chunks) {
        const Plan& p = plans[j0 + r * row_step];
        if (p.kind == kOne || p.kind == kTwo) {
          ra[u] = reinterpret_cast<const Raw*>(vals + p.a * D)[c];
        }
        if (p.kind == kTwo) rb[u] = reinterpret_cast<const Raw*>(vals + p.b * D)[c];
      }
      if (++k == slots) { k = 0; ++r; }
    }
    // A compiler-only fence: phase 2 reads the plans again rather than keeping
    // what phase 1 read alive in registers across the batch.
    asm volatile("" ::: "memory");
    r = r0;
    k = k0;
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {  // conversions and stores
      const int32_t c = c0 + (k << shift);
      const int32_t j = j0 + r * row_step;
      const bool mine = r < rows && c < chunks;
      if (++k == slots) { k = 0; ++r; }
      if (!mine) continue;
      const Plan& p = plans[j];
      VecV va, vb;
      memcpy(&va, &ra[u], sizeof(VecV));
      memcpy(&vb, &rb[u], sizeof(VecV));
      O res[N];
      if (p.kind == kOne) {
#pragma unroll
        for (int e = 0; e < N; ++e) res[e] = Convert<V, O>(va.v[e]);
      } else if (p.kind == kTwo) {
        const Acc w = static_cast<Acc>(p.w);
#pragma unroll
        for (int e = 0; e < N; ++e) {
          const Acc x = E::load(va.v[e]);
          res[e] = Round<V, O>(x + w * (E::load(vb.v[e]) - x));
        }
      } else {
        const O fill = Round<V, O>(p.kind == kNanOut ? QuietNan<Acc>() : Acc(0));
#pragma unroll
        for (int e = 0; e < N; ++e) res[e] = fill;
      }
      StoreChunk<O, N, kCs>(out + j * stride + static_cast<int64_t>(c) * N, res);
    }
    r0 = r;
    k0 = k;
  }
}

// Elements per vector access of a stream: <= 16 bytes of values and of the
// output, or (WideLoads, batched methods) 16 bytes of values.
template <typename Tune>
__host__ __device__ constexpr int VecWidth(int item, int out_item, bool batched) {
  return Tune::kWideLoads && batched ? 16 / item : 16 / (item > out_item ? item : out_item);
}

template <typename V, typename O, typename Tune>
__device__ void WriteStream(const StreamDesc& s, const Plan* plans, int32_t nq, int64_t b,
                            int64_t row0) {
  constexpr bool kCs = Tune::kStreaming;
  if (s.method == kSlerp || s.method == kWindowMean) {
    constexpr int kVec = VecWidth<Tune>(sizeof(V), sizeof(O), false);
    if (s.vec == kVec) WriteRows<V, O, kVec, kCs>(s, plans, nq, b, row0);
    else WriteRows<V, O, 1, kCs>(s, plans, nq, b, row0);
  } else {
    constexpr int kVec = VecWidth<Tune>(sizeof(V), sizeof(O), true);
    if (s.vec == kVec) WriteRowsBatched<V, O, kVec, Tune::kBatch, kCs>(s, plans, nq, b, row0);
    else WriteRowsBatched<V, O, 1, Tune::kBatch, kCs>(s, plans, nq, b, row0);
  }
}

// Output dtypes: the stream's own, or f32 for 16-bit values (the promotions
// of a concatenation without float64; align.py concatenates with XLA otherwise).
template <typename Tune>
__device__ void WriteAnyStream(const StreamDesc& s, const Plan* plans, int32_t nq, int64_t b,
                               int64_t row0) {
  switch (s.value_type) {
    case kF32: WriteStream<float, float, Tune>(s, plans, nq, b, row0); break;
    case kF64: WriteStream<double, double, Tune>(s, plans, nq, b, row0); break;
    case kBF16:
      if (s.out_type == kBF16) WriteStream<__nv_bfloat16, __nv_bfloat16, Tune>(s, plans, nq, b, row0);
      else WriteStream<__nv_bfloat16, float, Tune>(s, plans, nq, b, row0);
      break;
    default:
      if (s.out_type == kF16) WriteStream<__half, __half, Tune>(s, plans, nq, b, row0);
      else WriteStream<__half, float, Tune>(s, plans, nq, b, row0);
      break;
  }
}

template <typename TT, typename Tune>
__global__ void __launch_bounds__(kThreads, Tune::kMinBlocks)
    AlignKernel(const __grid_constant__ AlignArgs args) {
  // [streams of this block][kTile] plans, then the staged times (LayOut).
  extern __shared__ __align__(16) unsigned char align_smem[];
  Plan* plans = reinterpret_cast<Plan*>(align_smem);
  // Streams k0 .. k0 + nk - 1 of tile `tile` (nk is 1 but in fused mode:
  // the stream index then stays uniform, in the SM's uniform registers).
  constexpr bool kFusedMode = Tune::kMode == kFused;
  const int32_t k0 = Tune::kMode == kPerStream ? static_cast<int32_t>(blockIdx.y)
                     : Tune::kMode == kInterleaved ? static_cast<int32_t>(blockIdx.x % args.K) : 0;
  const int32_t nk = kFusedMode ? args.K : 1;
  const int64_t tile = Tune::kMode == kInterleaved ? blockIdx.x / args.K : blockIdx.x;
  const int64_t b = tile / args.tiles;
  const int64_t q0 = (tile % args.tiles) * Tune::kTile;
  const int32_t nq = static_cast<int32_t>(min(static_cast<int64_t>(Tune::kTile), args.T - q0));
#pragma unroll 1
  for (int32_t k = 0; k < nk; ++k) StageTimes<TT>(args.streams[k0 + k], b, align_smem);
  __pipeline_commit();
  __pipeline_wait_prior(0);
  __syncthreads();
  for (int32_t idx = threadIdx.x; idx < nk * nq; idx += blockDim.x) {
    const int32_t k = idx / nq, j = idx - k * nq;
    plans[k * Tune::kTile + j] = PlanOne<TT>(args.streams[k0 + k], args, b, q0, j, align_smem);
  }
  __syncthreads();
  const int64_t row0 = b * args.T + q0;
#pragma unroll 1
  for (int32_t k = 0; k < nk; ++k) {
    WriteAnyStream<Tune>(args.streams[k0 + k], plans + k * Tune::kTile, nq, b, row0);
  }
}

// Host: per-stream vector width, lane groups and staging for the tuning; the
// modes of one stream per block order the streams widest output row first.
// Returns the dynamic shared memory of the launch.
template <typename Tune>
size_t LayOut(AlignArgs* a, int time_item) {
  const int K = a->K;
  if (Tune::kMode != kFused) {
    std::stable_sort(a->streams, a->streams + K, [](const StreamDesc& x, const StreamDesc& y) {
      return x.D * x.out_item > y.D * y.out_item;
    });
  }
  a->plan_bytes = static_cast<int32_t>((Tune::kMode == kFused ? K : 1) * Tune::kTile * sizeof(Plan));
  int64_t staged = 0;  // fused: bytes used so far; per stream: the most any stream uses
  for (int k = 0; k < K; ++k) {
    StreamDesc& d = a->streams[k];
    const bool batched = d.method != kSlerp && d.method != kWindowMean;
    const int vec = VecWidth<Tune>(d.item, d.out_item, batched);
    d.vec = d.aligned && d.D % vec == 0 ? vec : 1;
    d.chunks = static_cast<int32_t>(d.D / d.vec);
    d.lane_shift = 0;
    while (d.lane_shift < 5 && (1 << d.lane_shift) < d.chunks) ++d.lane_shift;
    const int64_t per_lane = (d.chunks + (1 << d.lane_shift) - 1) >> d.lane_shift;
    d.chunk_shift = 0;
    while ((int64_t{1} << d.chunk_shift) < per_lane) ++d.chunk_shift;
    const int64_t bytes = (d.S * time_item + 15) / 16 * 16;
    const int64_t at = Tune::kMode == kFused ? staged : 0;
    d.stage_offset = -1;
    if (a->plan_bytes + at + bytes <= kSmemBudget) {
      d.stage_offset = static_cast<int32_t>(a->plan_bytes + at);
      staged = Tune::kMode == kFused ? staged + bytes : std::max(staged, bytes);
    }
  }
  return static_cast<size_t>(a->plan_bytes + staged);
}

// Host: launches the kernel for the tuning on streams already described
// (K, T, queries, oor and each stream's fields up to `aligned` set).
template <typename TT, typename Tune>
void LaunchAlign(AlignArgs a, int64_t B, cudaStream_t stream) {
  a.tiles = CeilDiv(a.T, Tune::kTile);
  const size_t smem = LayOut<Tune>(&a, sizeof(TT));
  const int64_t blocks = B * a.tiles * (Tune::kMode == kInterleaved ? a.K : 1);
  const dim3 grid(static_cast<unsigned>(blocks), Tune::kMode == kPerStream ? a.K : 1);
  AlignKernel<TT, Tune><<<grid, kThreads, smem, stream>>>(a);
}

bool ValueTypeOf(ffi::DataType dtype, int32_t* code, int* item) {
  switch (dtype) {
    case ffi::DataType::F32: *code = kF32; *item = 4; return true;
    case ffi::DataType::F64: *code = kF64; *item = 8; return true;
    case ffi::DataType::BF16: *code = kBF16; *item = 2; return true;
    case ffi::DataType::F16: *code = kF16; *item = 2; return true;
    default: return false;
  }
}

ffi::Error Invalid(int k, const std::string& what) {
  return ffi::Error::InvalidArgument("align: stream " + std::to_string(k) + ": " + what);
}

// Where stream k writes: its own out buffer, or its columns of the shared one.
struct OutputSlot {
  void* base;          // first element of the buffer
  ffi::DataType type;  // element type of the buffer
  int64_t width;       // elements per row of the buffer
  int64_t column;      // first column of this stream
};

// Checks stream k's buffers and fills its descriptor.
ffi::Error DescribeStream(int k, const ffi::RemainingArgs& args, ffi::AnyBuffer::Dimensions od,
                          OutputSlot slot, ffi::Result<ffi::Buffer<ffi::PRED>> valid,
                          ffi::Result<ffi::Buffer<ffi::F32>> age, int64_t B, int64_t T,
                          ffi::DataType time_type, int32_t method, double offset,
                          double tolerance, double window, int32_t oor, StreamDesc* d) {
  auto values = args.get<ffi::AnyBuffer>(3 * k);
  auto times = args.get<ffi::AnyBuffer>(3 * k + 1);
  auto lengths = args.get<ffi::Buffer<ffi::S32>>(3 * k + 2);
  if (values.has_error()) return values.error();
  if (times.has_error()) return times.error();
  if (lengths.has_error()) return lengths.error();
  const auto vd = values->dimensions();
  const auto td = times->dimensions();
  const auto ld = lengths->dimensions();
  const auto md = valid->dimensions();
  const auto ad = age->dimensions();
  if (vd.size() != 3 || td.size() != 2 || ld.size() != 1 || od.size() != 3 ||
      md.size() != 2 || ad.size() != 2) {
    return Invalid(k, "bad ranks: values=" + ShapeString(vd) + " times=" + ShapeString(td) +
                          " lengths=" + ShapeString(ld) + " out=" + ShapeString(od));
  }
  const int64_t S = vd[1], D = vd[2];
  auto shared_or_full = [B](int64_t n) { return n == 1 || n == B; };
  if (vd[0] != B || td[1] != S || !shared_or_full(td[0]) || !shared_or_full(ld[0]) ||
      od[0] != B || od[1] != T || od[2] != slot.width || slot.column < 0 ||
      slot.column + D > slot.width || md[0] != B || md[1] != T || ad[0] != B || ad[1] != T) {
    return Invalid(k, "inconsistent shapes values=" + ShapeString(vd) + " times=" +
                          ShapeString(td) + " lengths=" + ShapeString(ld) +
                          " out=" + ShapeString(od) + " column " + std::to_string(slot.column));
  }
  int32_t value_type = 0, out_type = 0;
  int item = 0, out_item = 0;
  if (!ValueTypeOf(values->element_type(), &value_type, &item) ||
      !ValueTypeOf(slot.type, &out_type, &out_item) ||
      !(out_type == value_type ||
        (out_type == kF32 && (value_type == kBF16 || value_type == kF16)))) {
    return Invalid(k, "values must be f32/bf16/f16/f64 and the output of the same dtype "
                      "(or f32 for bf16/f16 values)");
  }
  if (times->element_type() != time_type) {
    return Invalid(k, "times and query_times dtypes differ");
  }
  if (method < kLinear || method > kWindowMean || (method == kSlerp && D != 4) ||
      (oor == kExtrapolate && method != kLinear) || (method == kWindowMean && !(window > 0)) ||
      S > 0x7fffffffLL || D > 0x7fffffffLL) {
    return Invalid(k, "bad method/out_of_range/window/shape");
  }
  char* out = static_cast<char*>(slot.base) + slot.column * out_item;
  d->values = values->untyped_data();
  d->times = times->untyped_data();
  d->lengths = lengths->typed_data();
  d->out = out;
  d->valid = valid->typed_data();
  d->age = age->typed_data();
  d->S = S;
  d->D = D;
  d->out_stride = slot.width;
  d->times_stride = td[0] == B ? S : 0;
  d->lengths_stride = ld[0] == B ? 1 : 0;
  d->offset = offset;
  d->tolerance = tolerance;
  d->window = window;
  d->method = method;
  d->value_type = value_type;
  d->out_type = out_type;
  d->item = item;
  d->out_item = out_item;
  // 16-byte vectors need 16-byte aligned rows of values and output chunks
  // (LayOut also needs D to be a multiple of the vector width).
  d->aligned = Aligned16(values->untyped_data()) && Aligned16(slot.base) &&
               (slot.column * out_item) % 16 == 0 && (slot.width * out_item) % 16 == 0;
  return ffi::Error::Success();
}

ffi::Error AlignImpl(cudaStream_t stream, ffi::AnyBuffer queries, ffi::RemainingArgs args,
                     ffi::RemainingRets rets, ffi::Span<const int32_t> methods,
                     ffi::Span<const double> offsets, ffi::Span<const double> tolerances,
                     ffi::Span<const double> windows, ffi::Span<const int64_t> columns,
                     int32_t out_of_range, int32_t concatenated) {
  const int64_t K = static_cast<int64_t>(methods.size());
  if (K < 1 || K > kMaxStreams) {
    return ffi::Error::InvalidArgument("align: needs 1 to " + std::to_string(kMaxStreams) +
                                       " streams, got " + std::to_string(K));
  }
  const int64_t per_stream_rets = concatenated ? 2 : 3;
  const int64_t shared_rets = concatenated ? 1 : 0;
  if (static_cast<int64_t>(offsets.size()) != K ||
      static_cast<int64_t>(tolerances.size()) != K ||
      static_cast<int64_t>(windows.size()) != K || static_cast<int64_t>(columns.size()) != K ||
      static_cast<int64_t>(args.size()) != 3 * K ||
      static_cast<int64_t>(rets.size()) != shared_rets + per_stream_rets * K) {
    return ffi::Error::InvalidArgument("align: expected 3 operands per stream and 3 results "
                                       "per stream (2 and one shared when concatenated)");
  }
  if (auto e = ExpectRank(queries.dimensions(), 2, "query_times"); e.failure()) return e;
  const ffi::DataType time_type = queries.element_type();
  if (time_type != ffi::DataType::F32 && time_type != ffi::DataType::F64) {
    return ffi::Error::InvalidArgument("align: query_times must be f32 or f64");
  }
  if (out_of_range < kClamp || out_of_range > kExtrapolate) {
    return ffi::Error::InvalidArgument("align: bad out_of_range");
  }
  auto first_values = args.get<ffi::AnyBuffer>(0);
  if (first_values.has_error()) return first_values.error();
  if (first_values->dimensions().size() != 3) {
    return Invalid(0, "values must have rank 3");
  }
  const int64_t B = first_values->dimensions()[0];
  const int64_t Bq = queries.dimensions()[0], T = queries.dimensions()[1];
  if (Bq != 1 && Bq != B) {
    return ffi::Error::InvalidArgument("align: query_times " +
                                       ShapeString(queries.dimensions()) +
                                       " must have 1 or B rows");
  }
  std::optional<ffi::Result<ffi::AnyBuffer>> shared_out;
  if (concatenated) {
    auto out = rets.get<ffi::AnyBuffer>(0);
    if (out.has_error()) return out.error();
    shared_out = *out;
  }
  AlignArgs a{};
  int64_t width_used = 0;
  for (int k = 0; k < K; ++k) {
    const int64_t first = shared_rets + per_stream_rets * k;
    std::optional<ffi::Result<ffi::AnyBuffer>> own_out;
    if (!concatenated) {
      auto out = rets.get<ffi::AnyBuffer>(first);
      if (out.has_error()) return out.error();
      own_out = *out;
    }
    ffi::Result<ffi::AnyBuffer>& out = concatenated ? *shared_out : *own_out;
    auto valid = rets.get<ffi::Buffer<ffi::PRED>>(first + per_stream_rets - 2);
    auto age = rets.get<ffi::Buffer<ffi::F32>>(first + per_stream_rets - 1);
    if (valid.has_error()) return valid.error();
    if (age.has_error()) return age.error();
    const auto od = out->dimensions();
    const OutputSlot slot{out->untyped_data(), out->element_type(),
                          od.size() == 3 ? od[2] : -1, concatenated ? columns[k] : 0};
    if (auto e = DescribeStream(k, args, od, slot, *valid, *age, B, T, time_type, methods[k],
                                offsets[k], tolerances[k], windows[k], out_of_range,
                                &a.streams[k]);
        e.failure()) {
      return e;
    }
    width_used += a.streams[k].D;
  }
  if (concatenated && width_used != (*shared_out)->dimensions()[2]) {
    return ffi::Error::InvalidArgument("align: the streams' widths must add up to the "
                                       "concatenated output's " +
                                       ShapeString((*shared_out)->dimensions()));
  }
  if (B == 0 || T == 0) return ffi::Error::Success();
  a.queries = queries.untyped_data();
  a.T = T;
  a.queries_stride = Bq == B ? T : 0;
  a.K = static_cast<int32_t>(K);
  a.oor = out_of_range;
  if (B * CeilDiv(T, AlignTuning::kTile) * K > 0x7fffffffLL) {
    return ffi::Error::InvalidArgument("align: too many episodes x query tiles");
  }
  if (time_type == ffi::DataType::F64) {
    LaunchAlign<double, AlignTuning>(a, B, stream);
  } else {
    LaunchAlign<float, AlignTuning>(a, B, stream);
  }
  return LastCudaError("align kernel launch");
}

}  // namespace
}  // namespace robocache

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    RobocacheAlign, robocache::AlignImpl,
    xla::ffi::Ffi::Bind()
        .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
        .Arg<xla::ffi::AnyBuffer>()  // query_times
        .RemainingArgs()             // per stream: values, times, lengths
        .RemainingRets()             // [out], per stream: [out], valid, age
        .Attr<xla::ffi::Span<const int32_t>>("methods")
        .Attr<xla::ffi::Span<const double>>("offsets")
        .Attr<xla::ffi::Span<const double>>("tolerances")
        .Attr<xla::ffi::Span<const double>>("windows")
        .Attr<xla::ffi::Span<const int64_t>>("columns")
        .Attr<int32_t>("out_of_range")
        .Attr<int32_t>("concatenated"),
    {xla::ffi::Traits::kCmdBufferCompatible});
