// resample: batched time series evaluated at new timestamps.
//
// Layout (canonical shapes built by jax_robocache/resample.py):
//   values  [B, S, D]  f32 | bf16 | f16 | f64
//   times   [Bt, S]    f32 | f64, Bt in {1, B}
//   queries [Bq, T]    same dtype as times, Bq in {1, B}
//   lengths [Bl]       s32, Bl in {1, B}
//   out     [B, T, D]  dtype of values
//   valid   [B, T]     pred
//
// One block handles up to kQueriesPerBlock queries of one episode. Phase 1:
// the episode's timestamps are staged in shared memory (coalesced, when they
// fit) and each query is planned by one binary search (PlanQuery); the plans
// go to shared memory. Phase 2: each output row is streamed by a group of
// `lanes` consecutive threads of a warp covering consecutive 16-byte chunks,
// so loads of value rows and stores of output rows are coalesced and native
// width for bf16/f16, and the plan is read once per row.
#include "resample.h"

#include <algorithm>

#include "ffi_common.h"
#include "interp_plan.cuh"
#include "row_ops.cuh"

namespace robocache {
namespace {

constexpr int kThreads = 256;
constexpr int kQueriesPerBlock = 128;  // <= kThreads: one planning thread per query
static_assert(kQueriesPerBlock <= kThreads, "one thread plans one query");
constexpr int64_t kMaxStagedTimeBytes = 32 * 1024;

struct ResampleArgs {
  const void* values;
  const void* times;
  const void* queries;
  const int32_t* lengths;
  void* out;
  bool* valid;
  int64_t S, D, T, tiles;
  int64_t times_stride, queries_stride, lengths_stride;  // 0 when shared
  int32_t method, oor;
  int32_t chunks;      // vectors per row (D / N)
  int32_t lane_shift;  // log2 of the threads that share one row (<= 5)
  bool stage_times;    // copy the episode's timestamps to shared memory
};

template <typename V, typename TT, int N>
__global__ void __launch_bounds__(kThreads) ResampleKernel(ResampleArgs args) {
  using E = Elem<V>;
  using Acc = typename E::Acc;
  using VecT = Vec<V, N>;
  __shared__ Plan plans[kQueriesPerBlock];
  extern __shared__ unsigned char staged_raw[];

  const int64_t b = blockIdx.x / args.tiles;
  const int64_t q0 = (blockIdx.x % args.tiles) * kQueriesPerBlock;
  const int32_t nq = static_cast<int32_t>(
      min(static_cast<int64_t>(kQueriesPerBlock), args.T - q0));
  const int64_t S = args.S, D = args.D;

  // Phase 1: plan every query of this tile.
  const TT* t = static_cast<const TT*>(args.times) + b * args.times_stride;
  const TT* qs = static_cast<const TT*>(args.queries) + b * args.queries_stride;
  int32_t n = args.lengths[b * args.lengths_stride];
  n = n < 0 ? 0 : (n > S ? static_cast<int32_t>(S) : n);
  // This thread's query (kQueriesPerBlock <= blockDim.x), loaded before the
  // staging barrier so that both global loads are in flight together.
  const int32_t own = threadIdx.x;
  const TT q = own < nq ? qs[q0 + own] : TT(0);
  if (args.stage_times) {
    TT* staged = reinterpret_cast<TT*>(staged_raw);
    for (int32_t k = threadIdx.x; k < n; k += blockDim.x) staged[k] = t[k];
    t = staged;
    __syncthreads();
  }
  if (own < nq) {
    const Plan p = PlanQuery(t, n, q, args.method, args.oor);
    plans[own] = p;
    args.valid[b * args.T + q0 + own] = p.valid;
  }
  __syncthreads();

  // Phase 2: write the output rows.
  const V* __restrict__ vals = static_cast<const V*>(args.values) + b * S * D;
  V* __restrict__ out = static_cast<V*>(args.out) + (b * args.T + q0) * D;
  if (args.method == kSlerp) {  // D == 4, one thread per query
    for (int32_t j = threadIdx.x; j < nq; j += blockDim.x) {
      const Plan p = plans[j];
      V* o = out + j * 4;
      if (p.kind == kNanOut || p.kind == kZeroOut) {
        const V fill = E::store(p.kind == kNanOut ? QuietNan<Acc>() : Acc(0));
        for (int k = 0; k < 4; ++k) o[k] = fill;
      } else {
        SlerpRow(vals + p.a * 4, vals + p.b * 4, p.w, p.kind, o);
      }
    }
    return;
  }
  const int32_t lanes = 1 << args.lane_shift;
  const int32_t lane = threadIdx.x & 31;
  const int32_t first_chunk = lane & (lanes - 1);
  const int32_t rows_per_warp = 32 >> args.lane_shift;
  const int32_t row_step = (blockDim.x >> 5) * rows_per_warp;
  const int32_t chunks = args.chunks;
  // One output row per thread group; unrolled so that the loads of the next
  // row are issued before the stores of this one (the pointers are restrict).
#pragma unroll 2
  for (int32_t j = (threadIdx.x >> 5) * rows_per_warp + (lane >> args.lane_shift); j < nq;
       j += row_step) {
    const Plan p = plans[j];
    const VecT* __restrict__ ra = reinterpret_cast<const VecT*>(vals + p.a * D);
    const VecT* __restrict__ rb = reinterpret_cast<const VecT*>(vals + p.b * D);
    VecT* __restrict__ o = reinterpret_cast<VecT*>(out + j * D);
    if (p.kind == kOne) {
#pragma unroll 4
      for (int32_t c = first_chunk; c < chunks; c += lanes) o[c] = ra[c];
    } else if (p.kind == kTwo) {
      const Acc w = static_cast<Acc>(p.w);
#pragma unroll 4
      for (int32_t c = first_chunk; c < chunks; c += lanes) {
        const VecT va = ra[c], vb = rb[c];
        VecT r;
#pragma unroll
        for (int e = 0; e < N; ++e) {
          const Acc x = E::load(va.v[e]);
          r.v[e] = E::store(x + w * (E::load(vb.v[e]) - x));
        }
        o[c] = r;
      }
    } else {
      VecT r;
      const V fill = E::store(p.kind == kNanOut ? QuietNan<Acc>() : Acc(0));
#pragma unroll
      for (int e = 0; e < N; ++e) r.v[e] = fill;
      for (int32_t c = first_chunk; c < chunks; c += lanes) o[c] = r;
    }
  }
}

template <typename V, typename TT>
ffi::Error Launch(cudaStream_t stream, const ResampleArgs& args, int64_t B) {
  const int64_t blocks = B * args.tiles;
  if (blocks > 0x7fffffffLL) {
    return ffi::Error::InvalidArgument("resample: too many episodes x query tiles");
  }
  constexpr int kVec = 16 / sizeof(V);
  ResampleArgs a = args;
  const bool vectorised = a.D % kVec == 0 && Aligned16(a.values) && Aligned16(a.out);
  const int vec = vectorised ? kVec : 1;
  a.chunks = static_cast<int32_t>(a.D / vec);
  a.lane_shift = 0;
  while (a.lane_shift < 5 && (1 << a.lane_shift) < a.chunks) ++a.lane_shift;
  const int64_t time_bytes = a.S * static_cast<int64_t>(sizeof(TT));
  a.stage_times = time_bytes <= kMaxStagedTimeBytes;
  const size_t smem = a.stage_times ? static_cast<size_t>(time_bytes) : 0;
  if (vectorised) {
    ResampleKernel<V, TT, kVec><<<blocks, kThreads, smem, stream>>>(a);
  } else {
    ResampleKernel<V, TT, 1><<<blocks, kThreads, smem, stream>>>(a);
  }
  return LastCudaError("resample kernel launch");
}

ffi::Error ResampleImpl(cudaStream_t stream, ffi::AnyBuffer values,
                        ffi::AnyBuffer times, ffi::AnyBuffer queries,
                        ffi::Buffer<ffi::S32> lengths,
                        ffi::Result<ffi::AnyBuffer> out,
                        ffi::Result<ffi::Buffer<ffi::PRED>> valid,
                        int32_t method, int32_t out_of_range) {
  if (auto e = ExpectRank(values.dimensions(), 3, "values"); e.failure()) return e;
  if (auto e = ExpectRank(times.dimensions(), 2, "times"); e.failure()) return e;
  if (auto e = ExpectRank(queries.dimensions(), 2, "query_times"); e.failure()) return e;
  const auto vd = values.dimensions();
  const int64_t B = vd[0], S = vd[1], D = vd[2];
  const int64_t T = queries.dimensions()[1];
  const int64_t Bt = times.dimensions()[0], Bq = queries.dimensions()[0];
  const int64_t Bl = lengths.dimensions()[0];
  auto shared_or_full = [B](int64_t n) { return n == 1 || n == B; };
  if (times.dimensions()[1] != S || !shared_or_full(Bt) || !shared_or_full(Bq) ||
      !shared_or_full(Bl) || out->dimensions().size() != 3 ||
      out->dimensions()[0] != B || out->dimensions()[1] != T ||
      out->dimensions()[2] != D) {
    return ffi::Error::InvalidArgument(
        "resample: inconsistent shapes values=" + ShapeString(vd) +
        " times=" + ShapeString(times.dimensions()) +
        " query_times=" + ShapeString(queries.dimensions()) +
        " out=" + ShapeString(out->dimensions()));
  }
  if (times.element_type() != queries.element_type()) {
    return ffi::Error::InvalidArgument("resample: times and query_times dtypes differ");
  }
  if (values.element_type() != out->element_type()) {
    return ffi::Error::InvalidArgument("resample: out dtype must match values");
  }
  if (method < kLinear || method > kSlerp || out_of_range < kClamp ||
      out_of_range > kExtrapolate || (method == kSlerp && D != 4) ||
      S > 0x7fffffffLL || D > 0x7fffffffLL) {
    return ffi::Error::InvalidArgument("resample: bad method/out_of_range/shape");
  }
  if (B == 0 || T == 0) return ffi::Error::Success();

  ResampleArgs args{values.untyped_data(), times.untyped_data(),
                    queries.untyped_data(), lengths.typed_data(),
                    out->untyped_data(), valid->typed_data(),
                    S, D, T, CeilDiv(T, kQueriesPerBlock),
                    Bt == B ? S : 0, Bq == B ? T : 0, Bl == B ? 1 : 0,
                    method, out_of_range, 0, 0, false};
  ffi::Error result = ffi::Error::InvalidArgument("resample: unsupported dtypes");
  const bool time_ok = DispatchFloat(times.element_type(), [&](auto time_tag) {
    using TT = decltype(time_tag);
    if constexpr (std::is_same_v<TT, float> || std::is_same_v<TT, double>) {
      DispatchFloat(values.element_type(), [&](auto value_tag) {
        result = Launch<decltype(value_tag), TT>(stream, args, B);
      });
    }
  });
  (void)time_ok;
  return result;
}

}  // namespace
}  // namespace robocache

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    RobocacheResample, robocache::ResampleImpl,
    xla::ffi::Ffi::Bind()
        .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
        .Arg<xla::ffi::AnyBuffer>()                   // values
        .Arg<xla::ffi::AnyBuffer>()                   // times
        .Arg<xla::ffi::AnyBuffer>()                   // query_times
        .Arg<xla::ffi::Buffer<xla::ffi::S32>>()       // lengths
        .Ret<xla::ffi::AnyBuffer>()                   // out
        .Ret<xla::ffi::Buffer<xla::ffi::PRED>>()      // valid
        .Attr<int32_t>("method")
        .Attr<int32_t>("out_of_range"),
    {xla::ffi::Traits::kCmdBufferCompatible});
