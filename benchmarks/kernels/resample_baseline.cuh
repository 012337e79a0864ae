// The resample kernel as it was before the configurable kernel of
// csrc/resample.cu (main at b47ac3d), frozen here so that
// resample_variants.cu times and bit-compares every variant against it.
// Included after csrc/resample.cu (it uses that file's helpers).
#pragma once

namespace resample_baseline {
using namespace robocache;

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


}  // namespace resample_baseline
