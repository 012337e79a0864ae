// A diagnostic variant for resample_variants.cu: planning split from row
// streaming. PlanKernel writes one 16-byte plan per query to global memory;
// GatherKernel then streams rows with no planning, no barrier and no shared
// memory, kRows rows in flight per thread group. Timing GatherKernel alone
// shows what the row traffic itself can reach; plan + gather, what the split
// costs as a whole. Linear/nearest/previous only (no slerp). Included after
// csrc/resample.cu.
#pragma once

namespace resample_split {
using namespace robocache;

struct GPlan {
  int32_t a, b;
  float w;  // float32 times only: the same value the fused kernel uses
  int32_t kind;
};

constexpr int kThreads = 256;

template <typename TT>
__global__ void __launch_bounds__(kThreads) PlanKernel(const ResampleArgs args, GPlan* plans) {
  extern __shared__ __align__(16) unsigned char staged_raw[];
  const int64_t b = blockIdx.x / args.tiles;
  const int64_t q0 = (blockIdx.x % args.tiles) * kThreads;
  const int32_t nq = static_cast<int32_t>(min(static_cast<int64_t>(kThreads), args.T - q0));
  const TT* t = static_cast<const TT*>(args.times) + b * args.times_stride;
  const TT* qs = static_cast<const TT*>(args.queries) + b * args.queries_stride;
  int32_t n = args.lengths[b * args.lengths_stride];
  const int32_t i = threadIdx.x;
  const TT q = i < nq ? qs[q0 + i] : TT(0);
  if (args.stage_times) {
    TT* staged = reinterpret_cast<TT*>(staged_raw);
    StageTimes<kThreads>(t, static_cast<int32_t>(args.S), staged);
    t = staged;
    __syncthreads();
  }
  n = n < 0 ? 0 : (n > args.S ? static_cast<int32_t>(args.S) : n);
  if (i < nq) {
    const Plan p = PlanQuery(t, n, q, args.method, args.oor);
    plans[b * args.T + q0 + i] = GPlan{p.a, p.b, static_cast<float>(p.w), p.kind};
    args.valid[b * args.T + q0 + i] = p.valid;
  }
}

// Rows (blockIdx.x * kRows + r) * groups + group of the flattened [B * T].
template <int kRows, typename V, int N>
__global__ void __launch_bounds__(kThreads) GatherKernel(const ResampleArgs args,
                                                         const GPlan* __restrict__ plans) {
  using E = Elem<V>;
  using Acc = typename E::Acc;
  using VecT = Vec<V, N>;
  using RawT = Raw<VecT>;
  const int32_t lanes = 1 << args.lane_shift;
  const int32_t groups = kThreads >> args.lane_shift;
  const int32_t group = threadIdx.x >> args.lane_shift;
  const int32_t first_chunk = threadIdx.x & (lanes - 1);
  const int64_t rows = args.num_tiles;  // B * T here
  const V* vals = static_cast<const V*>(args.values);
  V* out = static_cast<V*>(args.out);
  for (int32_t c = first_chunk; c < args.chunks; c += lanes) {
    RawT va[kRows], vb[kRows];
    GPlan p[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int64_t row = (static_cast<int64_t>(blockIdx.x) * kRows + r) * groups + group;
      p[r] = row < rows ? plans[row] : GPlan{0, 0, 0.f, -1};
      const V* base = vals + (row / args.T) * args.S * args.D;
      if (p[r].kind == kOne || p[r].kind == kTwo) {
        va[r] = LoadRaw<1>(reinterpret_cast<const VecT*>(base + p[r].a * args.D) + c);
      }
      if (p[r].kind == kTwo) {
        vb[r] = LoadRaw<1>(reinterpret_cast<const VecT*>(base + p[r].b * args.D) + c);
      }
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int64_t row = (static_cast<int64_t>(blockIdx.x) * kRows + r) * groups + group;
      if (p[r].kind < 0) continue;
      RawT res = va[r];
      if (p[r].kind == kTwo) {
        const VecT xa = BitCast<VecT>(va[r]), xb = BitCast<VecT>(vb[r]);
        VecT z;
#pragma unroll
        for (int e = 0; e < N; ++e) {
          const Acc x0 = E::load(xa.v[e]);
          z.v[e] = E::store(x0 + p[r].w * (E::load(xb.v[e]) - x0));
        }
        res = BitCast<RawT>(z);
      } else if (p[r].kind != kOne) {
        const V fill = E::store(p[r].kind == kNanOut ? QuietNan<Acc>() : Acc(0));
        VecT z;
#pragma unroll
        for (int e = 0; e < N; ++e) z.v[e] = fill;
        res = BitCast<RawT>(z);
      }
      StoreRaw<true>(reinterpret_cast<VecT*>(out + row * args.D) + c, res);
    }
  }
}

// Enqueues plan (unless gather_only) and gather. `a` as for LaunchCfg.
template <typename V, int kRows = 4>
ffi::Error Launch(cudaStream_t stream, ResampleArgs a, int64_t B, GPlan* plans,
                  bool gather_only) {
  if (a.method == kSlerp) return ffi::Error::InvalidArgument("split: no slerp");
  constexpr int kVec = 16 / sizeof(V);
  const bool vec = Vectorisable<V>(a);
  a.tiles = CeilDiv(a.T, kThreads);
  a.chunks = static_cast<int32_t>(vec ? a.D / kVec : a.D);
  a.lane_shift = 0;
  while (a.lane_shift < 5 && (1 << a.lane_shift) < a.chunks) ++a.lane_shift;
  a.stage_times = a.S * 4 <= kMaxStagedTimeBytes;
  if (!gather_only) {
    const size_t smem = a.stage_times ? a.S * 4 : 0;
    PlanKernel<float><<<static_cast<unsigned>(B * a.tiles), kThreads, smem, stream>>>(a, plans);
    if (auto e = LastCudaError("plan"); e.failure()) return e;
  }
  a.num_tiles = B * a.T;  // rows
  const int64_t rows_per_block = static_cast<int64_t>(kRows) * (kThreads >> a.lane_shift);
  const int64_t blocks = CeilDiv(a.num_tiles, rows_per_block);
  if (vec) {
    GatherKernel<kRows, V, kVec><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a, plans);
  } else {
    GatherKernel<kRows, V, 1><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a, plans);
  }
  return LastCudaError("gather");
}

}  // namespace resample_split
