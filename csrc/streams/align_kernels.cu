// align's kernels and launcher (align_kernels.h states the layout).
//
// Every stream's descriptor (pointers, S, D, dtype, method, offset, ...)
// travels by value in the kernel parameter struct, so one launch covers all
// streams: one block per (stream, episode, tile of kTile queries); the K
// blocks of a tile are consecutive (widest output row first), so the narrow
// streams' short, latency-bound blocks run beside the wide ones instead of
// before them, and a tile's concatenated rows are written at about the same
// time (partial 32-byte sectors merge in L2).
// Per block: phase 1 copies the episode's timestamps into shared memory with
// cp.async (every copy in flight before one wait; streams whose times do not
// fit search global memory), then plans each query (PlanQuery of
// interp_plan.cuh, plus the age, the window of window_mean and the tolerance
// check); phase 2 streams the output rows: groups of lanes cover consecutive
// chunks of up to 16 bytes of a row, and each thread loads a batch of its
// (row, chunk) units before it converts and stores any of them (kBatch units
// of loads in flight per thread). The mean of a window is summed sequentially
// from its first sample (deterministic). A value is rounded to the stream's
// dtype first and then converted to the output dtype (the concatenation's, or
// out_dtype's), so the result equals converting the per-stream outputs (one
// rounding of each; XLA's conversion of them). How the launch
// shape was chosen: docs/perf/kernels/README.md.
#include "streams/align_kernels.h"

#include <cuda_pipeline.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

#include "common/elem.cuh"
#include "streams/interp_plan.cuh"
#include "streams/row_ops.cuh"
#include "streams/stream_rules.cuh"

namespace robocache {
namespace {

constexpr int kThreads = 256;
// Shared memory per block: plans + staged timestamps stay within the 48 KiB
// a launch gets without opting in.
constexpr int64_t kSmemBudget = 48 * 1024;
// The launch shape: queries per block; (row, chunk) units whose loads a thread
// issues before its first store; __launch_bounds__ minimum blocks per
// multiprocessor (caps registers at 80: the batch's loads must stay in
// registers, a spill of them serialises the loads).
constexpr int kTile = 64;
constexpr int kBatch = 4;
constexpr int kMinBlocks = 3;

// A stream's descriptor as the kernel reads it: the call's, and its layout
// (set by LayOut).
struct StreamDesc : AlignStream {
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
  // Each query of an episode whose times the dtype cannot resolve is NaN.
  const TT q = Unresolved(t, n) ? QuietNan<TT>() : qs[j] - offset;
  int32_t ub;
  Plan p = PlanQuery(t, n, q, plan_method, args.oor, &ub);
  float age;
  const bool valid = ApplyStreamRules(t, n, q, s.method, window, tolerance, p, age, ub);
  if (!valid && args.oor == kNan) p.kind = kNanOut;
  p.valid = valid;
  const int64_t row = b * args.T + q0 + j;
  s.valid[row] = valid;
  s.age[row] = age;
  return p;
}

// Converts a value already rounded to the stream's dtype V to the output dtype O: exact when O
// is at least as wide as V, one round-to-nearest-even when O is narrower (the one rounding of
// out_dtype).
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

// Stores r[0..N) at dst (aligned to min(N * sizeof(O), 16) bytes) in accesses of <= 16 bytes.
template <typename O, int N>
__device__ __forceinline__ void StoreChunk(O* dst, const O (&r)[N]) {
  constexpr int P = N * sizeof(O) > 16 ? 16 / static_cast<int>(sizeof(O)) : N;
#pragma unroll
  for (int i = 0; i < N; i += P) {
    Vec<O, P> v;
#pragma unroll
    for (int e = 0; e < P; ++e) v.v[e] = r[i + e];
    *reinterpret_cast<Vec<O, P>*>(dst + i) = v;
  }
}

// Phase 2 of slerp and window_mean streams: the tile's output rows of stream
// `s`, values of type V, output of type O, N elements per access (one unit at a time).
template <typename V, typename O, int N>
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
      StoreChunk<O, N>(o + c * N, res);
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
template <typename V, typename O, int N>
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
      StoreChunk<O, N>(out + j * stride + static_cast<int64_t>(c) * N, res);
    }
    r0 = r;
    k0 = k;
  }
}

// Elements per vector access of a stream: batched methods load 16 bytes of
// values (16-bit values widened to f32 take two 16-byte stores a chunk); the
// others move <= 16 bytes of values and of the output.
__host__ __device__ constexpr int VecWidth(int item, int out_item, bool batched) {
  return batched ? 16 / item : 16 / (item > out_item ? item : out_item);
}

template <typename V, typename O, int N, bool kBatched>
__device__ __forceinline__ void WriteRowsOf(const StreamDesc& s, const Plan* plans, int32_t nq,
                                            int64_t b, int64_t row0) {
  if constexpr (kBatched) WriteRowsBatched<V, O, N>(s, plans, nq, b, row0);
  else WriteRows<V, O, N>(s, plans, nq, b, row0);
}

// Rows whose alignment allows half the widest access (a bfloat16 concatenation of 532
// columns: 1064-byte rows): compiled as a call, so that its registers do not raise the kernel's.
template <typename V, typename O, int N, bool kBatched>
__device__ __noinline__ void WriteRowsHalfWidth(const StreamDesc& s, const Plan* plans,
                                                int32_t nq, int64_t b, int64_t row0) {
  WriteRowsOf<V, O, N, kBatched>(s, plans, nq, b, row0);
}

// Dispatches on the stream's vector width s.vec: N, N / 2 (when N >= 4) or 1 elements per
// access (the widths LayOut picks from).
template <typename V, typename O, int N, bool kBatched>
__device__ void WriteStreamVec(const StreamDesc& s, const Plan* plans, int32_t nq, int64_t b,
                               int64_t row0) {
  if (s.vec == N) {
    WriteRowsOf<V, O, N, kBatched>(s, plans, nq, b, row0);
    return;
  }
  if constexpr (N >= 4) {
    if (s.vec == N / 2) {
      WriteRowsHalfWidth<V, O, N / 2, kBatched>(s, plans, nq, b, row0);
      return;
    }
  }
  WriteRowsOf<V, O, 1, kBatched>(s, plans, nq, b, row0);
}

template <typename V, typename O>
__device__ void WriteStream(const StreamDesc& s, const Plan* plans, int32_t nq, int64_t b,
                            int64_t row0) {
  if (s.method == kSlerp || s.method == kWindowMean) {
    WriteStreamVec<V, O, VecWidth(sizeof(V), sizeof(O), false), false>(s, plans, nq, b, row0);
  } else {
    WriteStreamVec<V, O, VecWidth(sizeof(V), sizeof(O), true), true>(s, plans, nq, b, row0);
  }
}

// A conversion the concatenation's promotion never asks for (out_dtype only):
// compiled as a call, so that its registers do not raise the kernel's.
template <typename V, typename O>
__device__ __noinline__ void WriteStreamConverted(const StreamDesc& s, const Plan* plans,
                                                  int32_t nq, int64_t b, int64_t row0) {
  WriteStream<V, O>(s, plans, nq, b, row0);
}

// Writes stream `s` with values of type V in its output dtype (align_kernels.h).
template <typename V>
__device__ void WriteStreamAs(const StreamDesc& s, const Plan* plans, int32_t nq, int64_t b,
                              int64_t row0) {
  constexpr bool kNarrow = !std::is_same_v<V, float> && !std::is_same_v<V, double>;
  if (s.out_type == s.value_type) {
    WriteStream<V, V>(s, plans, nq, b, row0);
  } else if constexpr (std::is_same_v<V, double>) {
    WriteStreamConverted<V, float>(s, plans, nq, b, row0);
  } else if constexpr (kNarrow) {  // the concatenation's float32, or the other 16-bit type
    if (s.out_type == kF32) WriteStream<V, float>(s, plans, nq, b, row0);
    else if constexpr (std::is_same_v<V, __half>) {
      WriteStreamConverted<V, __nv_bfloat16>(s, plans, nq, b, row0);
    } else {
      WriteStreamConverted<V, __half>(s, plans, nq, b, row0);
    }
  } else {  // float32 values into a 16-bit output
    if (s.out_type == kBF16) WriteStreamConverted<V, __nv_bfloat16>(s, plans, nq, b, row0);
    else WriteStreamConverted<V, __half>(s, plans, nq, b, row0);
  }
}

__device__ void WriteAnyStream(const StreamDesc& s, const Plan* plans, int32_t nq, int64_t b,
                               int64_t row0) {
  switch (s.value_type) {
    case kF32: WriteStreamAs<float>(s, plans, nq, b, row0); break;
    case kF64: WriteStreamAs<double>(s, plans, nq, b, row0); break;
    case kBF16: WriteStreamAs<__nv_bfloat16>(s, plans, nq, b, row0); break;
    default: WriteStreamAs<__half>(s, plans, nq, b, row0); break;
  }
}

template <typename TT>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
    AlignKernel(const __grid_constant__ AlignArgs args) {
  // [kTile] plans, then the staged times (LayOut).
  extern __shared__ __align__(16) unsigned char align_smem[];
  Plan* plans = reinterpret_cast<Plan*>(align_smem);
  // Stream k0 of tile `tile`: the K streams of a tile are consecutive blocks.
  const int32_t k0 = static_cast<int32_t>(blockIdx.x % args.K);
  const int64_t tile = blockIdx.x / args.K;
  const int64_t b = tile / args.tiles;
  const int64_t q0 = (tile % args.tiles) * kTile;
  const int32_t nq = static_cast<int32_t>(min(static_cast<int64_t>(kTile), args.T - q0));
  StageTimes<TT>(args.streams[k0], b, align_smem);
  __pipeline_commit();
  __pipeline_wait_prior(0);
  __syncthreads();
  for (int32_t j = threadIdx.x; j < nq; j += blockDim.x) {
    plans[j] = PlanOne<TT>(args.streams[k0], args, b, q0, j, align_smem);
  }
  __syncthreads();
  WriteAnyStream(args.streams[k0], plans, nq, b, b * args.T + q0);
}

// Host: per-stream vector width, lane groups and staging; the streams are
// ordered widest output row first. Returns the dynamic shared memory of the
// launch.
size_t LayOut(AlignArgs* a, int time_item) {
  const int K = a->K;
  std::stable_sort(a->streams, a->streams + K, [](const StreamDesc& x, const StreamDesc& y) {
    return x.D * x.out_item > y.D * y.out_item;
  });
  a->plan_bytes = static_cast<int32_t>(kTile * sizeof(Plan));
  int64_t staged = 0;  // the most any stream uses
  for (int k = 0; k < K; ++k) {
    StreamDesc& d = a->streams[k];
    const bool batched = d.method != kSlerp && d.method != kWindowMean;
    // The widest access of VecWidth, half of it or 1 element that divides D and whose loads
    // (vec * item bytes) and stores (vec * out_item bytes, in pieces of <= 16) the alignments
    // allow.
    const int widest = VecWidth(d.item, d.out_item, batched);
    auto fits = [&](int vec) {
      return d.D % vec == 0 && vec * d.item <= d.values_align &&
             std::min(vec * d.out_item, 16) <= d.out_align;
    };
    d.vec = fits(widest) ? widest : widest >= 4 && fits(widest / 2) ? widest / 2 : 1;
    d.chunks = static_cast<int32_t>(d.D / d.vec);
    d.lane_shift = 0;
    while (d.lane_shift < 5 && (1 << d.lane_shift) < d.chunks) ++d.lane_shift;
    const int64_t per_lane = (d.chunks + (1 << d.lane_shift) - 1) >> d.lane_shift;
    d.chunk_shift = 0;
    while ((int64_t{1} << d.chunk_shift) < per_lane) ++d.chunk_shift;
    const int64_t bytes = (d.S * time_item + 15) / 16 * 16;
    d.stage_offset = -1;
    if (a->plan_bytes + bytes <= kSmemBudget) {
      d.stage_offset = a->plan_bytes;
      staged = std::max(staged, bytes);
    }
  }
  return static_cast<size_t>(a->plan_bytes + staged);
}

}  // namespace

Status LaunchAlign(cudaStream_t stream, const AlignCall& call, int64_t B, ElemType time_type) {
  AlignArgs a{};
  for (int k = 0; k < call.K; ++k) static_cast<AlignStream&>(a.streams[k]) = call.streams[k];
  a.queries = call.queries;
  a.T = call.T;
  a.queries_stride = call.queries_stride;
  a.K = call.K;
  a.oor = call.oor;
  a.tiles = CeilDiv(a.T, kTile);
  if (B * a.tiles * a.K > 0x7fffffffLL) {
    return Status::Invalid("align: too many episodes x query tiles");
  }
  const size_t smem = LayOut(&a, time_type == kF64 ? sizeof(double) : sizeof(float));
  const unsigned blocks = static_cast<unsigned>(B * a.tiles * a.K);
  if (time_type == kF64) {
    AlignKernel<double><<<blocks, kThreads, smem, stream>>>(a);
  } else {
    AlignKernel<float><<<blocks, kThreads, smem, stream>>>(a);
  }
  return Status::LastCuda("align kernel launch");
}

}  // namespace robocache
