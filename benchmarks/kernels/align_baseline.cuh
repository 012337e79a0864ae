// FROZEN COPY of the align kernel as it was before the `alperf` rework (csrc/align.cu at
// b47ac3d, its device code only, verbatim), for benchmarks/kernels/align_variants.cu: the
// reference output (bit for bit) and the "base" row of its table. Include it after
// csrc/align.cu (it uses interp_plan.cuh / row_ops.cuh / ffi_common.h). Do not edit.
#ifndef JAX_ROBOCACHE_ALIGN_BASELINE_CUH_
#define JAX_ROBOCACHE_ALIGN_BASELINE_CUH_

namespace robocache {
namespace base {

constexpr int kThreads = 256;
constexpr int kQueriesPerBlock = 128;
constexpr int64_t kMaxStagedTimeBytes = 32 * 1024;
// Streams per call; must match MAX_STREAMS in jax_robocache/align.py. The
// parameter struct stays far below the 4 KiB kernel parameter limit.
constexpr int kMaxStreams = 16;
// Method code of window_mean (jax_robocache/align.py), after interp_plan's.
constexpr int32_t kWindowMean = 4;
// Plan kind of a non-empty window: the mean of samples [a, b).
constexpr int32_t kWindowSum = 4;

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
  int32_t vec;         // elements per vector access (<= 16 bytes of V and of the output), or 1
  int32_t chunks;      // vectors per row (D / vec)
  int32_t lane_shift;  // log2 of the threads that share one row (<= 5)
  int32_t stage_times;
};

struct AlignArgs {
  StreamDesc streams[kMaxStreams];
  const void* queries;
  int64_t T, tiles, queries_stride;
  int32_t oor;
};

// Phase 1: plans, valid and age of the tile's queries for stream `s`.
template <typename TT>
__device__ void PlanTile(const StreamDesc& s, const AlignArgs& args, int64_t b,
                         int64_t q0, int32_t nq, Plan* plans,
                         unsigned char* staged_raw) {
  const TT* t = static_cast<const TT*>(s.times) + b * s.times_stride;
  const TT* qs = static_cast<const TT*>(args.queries) + b * args.queries_stride + q0;
  int32_t n = s.lengths[b * s.lengths_stride];
  n = n < 0 ? 0 : (n > s.S ? static_cast<int32_t>(s.S) : n);
  if (s.stage_times) {
    TT* staged = reinterpret_cast<TT*>(staged_raw);
    for (int32_t k = threadIdx.x; k < n; k += blockDim.x) staged[k] = t[k];
    t = staged;
    __syncthreads();
  }
  const TT offset = static_cast<TT>(s.offset);
  const TT tolerance = static_cast<TT>(s.tolerance);
  const TT window = static_cast<TT>(s.window);
  const int32_t plan_method = s.method == kWindowMean ? kPrevious : s.method;
  const int64_t row0 = b * args.T + q0;
  for (int32_t j = threadIdx.x; j < nq; j += blockDim.x) {
    // The stream's sample times are times + offset: evaluate it at q - offset.
    const TT q = qs[j] - offset;
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
    plans[j] = p;
    s.valid[row0 + j] = valid;
    s.age[row0 + j] = age;
  }
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

// Phase 2: the tile's output rows of stream `s`: values of type V, output
// of type O, N elements per access.
template <typename V, typename O, int N>
__device__ void WriteRows(const StreamDesc& s, const Plan* plans, int32_t nq,
                          int64_t b, int64_t row0) {
  using E = Elem<V>;
  using Acc = typename E::Acc;
  using VecV = Vec<V, N>;
  using VecO = Vec<O, N>;
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
    const VecV* rb = reinterpret_cast<const VecV*>(vals + p.b * D);
    VecO* o = reinterpret_cast<VecO*>(out + j * stride);
    if (p.kind == kOne) {
#pragma unroll 4
      for (int32_t c = first_chunk; c < chunks; c += lanes) {
        const VecV va = ra[c];
        VecO r;
#pragma unroll
        for (int e = 0; e < N; ++e) r.v[e] = Convert<V, O>(va.v[e]);
        o[c] = r;
      }
    } else if (p.kind == kTwo) {
      const Acc w = static_cast<Acc>(p.w);
#pragma unroll 4
      for (int32_t c = first_chunk; c < chunks; c += lanes) {
        const VecV va = ra[c], vb = rb[c];
        VecO r;
#pragma unroll
        for (int e = 0; e < N; ++e) {
          const Acc x = E::load(va.v[e]);
          r.v[e] = Round<V, O>(x + w * (E::load(vb.v[e]) - x));
        }
        o[c] = r;
      }
    } else if (p.kind == kWindowSum) {
      const Acc count = static_cast<Acc>(p.b - p.a);
      for (int32_t c = first_chunk; c < chunks; c += lanes) {
        Acc acc[N];
#pragma unroll
        for (int e = 0; e < N; ++e) acc[e] = Acc(0);
        const VecV* col = ra + c;  // chunk c of row a; rows are `chunks` apart
        for (int32_t r = p.a; r < p.b; ++r, col += chunks) {
          const VecV v = *col;
#pragma unroll
          for (int e = 0; e < N; ++e) acc[e] += E::load(v.v[e]);
        }
        VecO res;
#pragma unroll
        for (int e = 0; e < N; ++e) res.v[e] = Round<V, O>(acc[e] / count);
        o[c] = res;
      }
    } else {
      VecO r;
      const O fill = Round<V, O>(p.kind == kNanOut ? QuietNan<Acc>() : Acc(0));
#pragma unroll
      for (int e = 0; e < N; ++e) r.v[e] = fill;
      for (int32_t c = first_chunk; c < chunks; c += lanes) o[c] = r;
    }
  }
}

template <typename V, typename O>
__device__ void WriteRowsAnyWidth(const StreamDesc& s, const Plan* plans, int32_t nq,
                                  int64_t b, int64_t row0) {
  constexpr int kVec = 16 / (sizeof(V) > sizeof(O) ? sizeof(V) : sizeof(O));
  if (s.vec == kVec) WriteRows<V, O, kVec>(s, plans, nq, b, row0);
  else WriteRows<V, O, 1>(s, plans, nq, b, row0);
}

// Output dtypes: the stream's own, or f32 for 16-bit values (the promotions
// of a concatenation without float64; align.py concatenates with XLA otherwise).
template <typename V>
__device__ void WriteRowsAnyOut(const StreamDesc& s, const Plan* plans, int32_t nq,
                                int64_t b, int64_t row0) {
  if (s.out_type == s.value_type) WriteRowsAnyWidth<V, V>(s, plans, nq, b, row0);
  else WriteRowsAnyWidth<V, float>(s, plans, nq, b, row0);
}

template <typename TT>
__global__ void __launch_bounds__(kThreads)
    AlignKernel(const __grid_constant__ AlignArgs args) {
  __shared__ Plan plans[kQueriesPerBlock];
  extern __shared__ __align__(16) unsigned char staged_raw[];
  const StreamDesc& s = args.streams[blockIdx.y];
  const int64_t b = blockIdx.x / args.tiles;
  const int64_t q0 = (blockIdx.x % args.tiles) * kQueriesPerBlock;
  const int32_t nq = static_cast<int32_t>(
      min(static_cast<int64_t>(kQueriesPerBlock), args.T - q0));
  PlanTile<TT>(s, args, b, q0, nq, plans, staged_raw);
  __syncthreads();
  const int64_t row0 = b * args.T + q0;
  switch (s.value_type) {
    case kF32: WriteRowsAnyWidth<float, float>(s, plans, nq, b, row0); break;
    case kF64: WriteRowsAnyWidth<double, double>(s, plans, nq, b, row0); break;
    case kBF16: WriteRowsAnyOut<__nv_bfloat16>(s, plans, nq, b, row0); break;
    default: WriteRowsAnyOut<__half>(s, plans, nq, b, row0); break;
  }
}

}  // namespace base
}  // namespace robocache

#endif  // JAX_ROBOCACHE_ALIGN_BASELINE_CUH_
