// align: many sensor streams evaluated on one query clock, in ONE launch.
//
// Layout (canonical shapes built by jax_robocache/align.py), K streams:
//   queries       [Bq, T]        f32 | f64, Bq in {1, B}
//   per stream k, three arguments (RemainingArgs):
//     values_k    [B, S_k, D_k]  f32 | bf16 | f16 | f64
//     times_k     [Bt_k, S_k]    dtype of queries, Bt_k in {1, B}
//     lengths_k   [Bl_k]         s32, Bl_k in {1, B}
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
// streams: grid (B * tiles, K), blockIdx.y picks the stream, blockIdx.x the
// (episode, tile of kQueriesPerBlock queries). Per block, as in resample:
// phase 1 stages the episode's timestamps in shared memory (when they fit)
// and plans each query (PlanQuery of interp_plan.cuh, plus the age, the
// window of window_mean and the tolerance check); phase 2 streams the output
// rows with groups of lanes covering consecutive chunks of up to 16 bytes.
// The mean of a window is summed sequentially from its first sample
// (deterministic). In concatenated mode a value is rounded to the stream's
// dtype first and then converted to the output dtype, so the result equals
// concatenating the per-stream outputs.
#include "align.h"

#include <algorithm>
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
                          double tolerance, double window, int32_t oor, StreamDesc* d,
                          int64_t* staged_bytes) {
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
  const int vec = 16 / std::max(item, out_item);
  const bool vectorised = D % vec == 0 && slot.width % vec == 0 &&
                          Aligned16(values->untyped_data()) && Aligned16(slot.base) &&
                          (slot.column * out_item) % (vec * out_item) == 0;
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
  d->vec = vectorised ? vec : 1;
  d->chunks = static_cast<int32_t>(D / d->vec);
  d->lane_shift = 0;
  while (d->lane_shift < 5 && (1 << d->lane_shift) < d->chunks) ++d->lane_shift;
  const int64_t time_bytes =
      S * static_cast<int64_t>(time_type == ffi::DataType::F64 ? 8 : 4);
  d->stage_times = time_bytes <= kMaxStagedTimeBytes;
  *staged_bytes = d->stage_times ? time_bytes : 0;
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
  int64_t staged_bytes = 0, width_used = 0;
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
    int64_t bytes = 0;
    if (auto e = DescribeStream(k, args, od, slot, *valid, *age, B, T, time_type, methods[k],
                                offsets[k], tolerances[k], windows[k], out_of_range,
                                &a.streams[k], &bytes);
        e.failure()) {
      return e;
    }
    staged_bytes = std::max(staged_bytes, bytes);
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
  a.tiles = CeilDiv(T, kQueriesPerBlock);
  a.queries_stride = Bq == B ? T : 0;
  a.oor = out_of_range;
  if (B * a.tiles > 0x7fffffffLL) {
    return ffi::Error::InvalidArgument("align: too many episodes x query tiles");
  }
  const dim3 grid(static_cast<unsigned>(B * a.tiles), static_cast<unsigned>(K));
  const size_t smem = static_cast<size_t>(staged_bytes);
  if (time_type == ffi::DataType::F64) {
    AlignKernel<double><<<grid, kThreads, smem, stream>>>(a);
  } else {
    AlignKernel<float><<<grid, kThreads, smem, stream>>>(a);
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
