// resample: batched time series evaluated at new timestamps.
//
// Layout (canonical shapes built by jax_robocache/resample.py):
//   values  [B, S, D]  f32 | bf16 | f16 | f64
//   times   [Bt, S]    f32 | f64, Bt in {1, B}
//   queries [Bq, T]    same dtype as times, Bq in {1, B}
//   lengths [Bl]       s32, Bl in {1, B}; negative: every query NaN (unresolved times)
//   out     [B, T, D]  dtype of values
//   valid   [B, T]     pred
//
// One block handles a tile of Cfg::kQueriesPerBlock queries of one episode
// (a persistent grid loops over tiles). Phase 1: the episode's timestamps are
// staged in shared memory (coalesced, every load in flight at once, when they
// fit) and each query is planned by one binary search (PlanQuery); the plans
// go to shared memory. Phase 2: each output row is streamed by a group of
// `lanes` consecutive threads of a warp covering consecutive 16-byte chunks,
// so loads of value rows and stores of output rows are coalesced and native
// width for bf16/f16, and the plan is read once per row; a group loads the
// rows of Cfg::kRows outputs before it stores the first. The configurations
// (who plans which rows, rows in flight, cache hints) are in
// resample_configs.cuh; LaunchResample picks one by shape.
#include "resample.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "ffi_common.h"
#include "interp_plan.cuh"
#include "resample_configs.cuh"
#include "row_ops.cuh"

namespace robocache {
namespace {

constexpr int64_t kMaxStagedTimeBytes = 32 * 1024;
// Calls whose output is at least this large (and whose tiles are full) are
// bandwidth bound and take LargeShapeCfg; the rest take SmallShapeCfg.
constexpr int64_t kLargeOutBytes = 8 << 20;

struct ResampleArgs {
  const void* values;
  const void* times;
  const void* queries;
  const int32_t* lengths;
  void* out;
  bool* valid;
  int64_t S, D, T;
  int64_t times_stride, queries_stride, lengths_stride;  // 0 when shared
  int32_t method, oor;
  // Set by LaunchCfg:
  int64_t tiles;       // query tiles per episode
  int64_t num_tiles;   // B * tiles
  int32_t chunks;      // vectors per row (D / N)
  int32_t lane_shift;  // log2 of the threads that share one row (<= 5)
  bool stage_times;    // copy the episode's timestamps to shared memory
};

// A row chunk as it sits in registers between its load and its store: 16-byte
// vectors as four 32-bit words (copies and selects stay whole-word, whatever
// the element type), narrower ones (the unvectorised path) as they are.
template <typename VecT>
using Raw = std::conditional_t<sizeof(VecT) == 16, uint4, VecT>;

template <typename To, typename From>
__device__ __forceinline__ To BitCast(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "same size");
  To to;
  memcpy(&to, &from, sizeof(to));
  return to;
}

// Loads with the configured cache hint (plain for the unvectorised path).
template <int kLoad, typename VecT>
__device__ __forceinline__ Raw<VecT> LoadRaw(const VecT* p) {
  if constexpr (sizeof(VecT) != 16) {
    return *p;
  } else if constexpr (kLoad == 0) {
    return *reinterpret_cast<const uint4*>(p);
  } else if constexpr (kLoad == 1) {
    return __ldg(reinterpret_cast<const uint4*>(p));
  } else {
    uint4 r;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
  }
}

template <bool kStream, typename VecT>
__device__ __forceinline__ void StoreRaw(VecT* p, const Raw<VecT>& v) {
  if constexpr (kStream && sizeof(VecT) == 16) {
    __stcs(reinterpret_cast<uint4*>(p), v);
  } else if constexpr (sizeof(VecT) == 16) {
    *reinterpret_cast<uint4*>(p) = v;
  } else {
    *p = v;
  }
}

// t[0, count) -> staged, with up to kUnroll loads of each thread in flight
// before its first shared-memory store.
template <int kThreads, typename TT>
__device__ __forceinline__ void StageTimes(const TT* __restrict__ t, int32_t count,
                                           TT* __restrict__ staged) {
  constexpr int kUnroll = 8;
  for (int32_t k0 = threadIdx.x; k0 < count; k0 += kUnroll * kThreads) {
    TT r[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (k0 + u * kThreads < count) r[u] = t[k0 + u * kThreads];
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (k0 + u * kThreads < count) staged[k0 + u * kThreads] = r[u];
    }
  }
}

// What a row needs of its plan to load its samples (kind -1: no row).
struct RowRef {
  int32_t kind, a, b;
};

__device__ __forceinline__ RowRef GetRowRef(const Plan* plans, int32_t jr, int32_t end) {
  if (jr >= end) return RowRef{-1, 0, 0};
  return RowRef{plans[jr].kind, plans[jr].a, plans[jr].b};
}

// Where row r's samples come from with kDedupe: 0 its own load, 1 row
// r - 1's first sample, 2 row r - 1's second sample.
__device__ __forceinline__ void DedupeSources(const RowRef& prev, const RowRef& cur,
                                              int32_t& src_a, int32_t& src_b) {
  const bool prev_a = prev.kind == kOne || prev.kind == kTwo, prev_b = prev.kind == kTwo;
  src_a = (prev_a && cur.a == prev.a) ? 1 : ((prev_b && cur.a == prev.b) ? 2 : 0);
  src_b = (prev_b && cur.b == prev.b) ? 2 : 0;
}

// Writes output rows j, j + stride, ..., j + (kRows - 1) * stride (those
// < end) of the tile, chunks first_chunk, first_chunk + lanes, ... (just
// first_chunk with kOnePass). Every value load of a chunk's batch is issued
// before its first store; between the two phases only the loaded data stays
// in registers (plans are read again from shared memory, which keeps the
// register count, hence the occupancy, up). With kDedupe a row equal to one
// of the previous row's is taken from its registers instead of loaded again.
template <typename Cfg, typename V, int N>
__device__ __forceinline__ void WriteRows(const Plan* plans, int32_t j, int32_t end,
                                          int32_t stride, const V* __restrict__ vals,
                                          V* __restrict__ out, int64_t D, int32_t chunks,
                                          int32_t first_chunk, int32_t lanes) {
  using E = Elem<V>;
  using Acc = typename E::Acc;
  using VecT = Vec<V, N>;
  using RawT = Raw<VecT>;
  constexpr int R = Cfg::kRows;
  if constexpr (Cfg::kPrefetch) {  // the next batch's rows, into L2
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const RowRef x = GetRowRef(plans, j + (R + r) * stride, end);
      if (first_chunk < chunks) {
        const V* pa = vals + x.a * D + first_chunk * N;
        const V* pb = vals + x.b * D + first_chunk * N;
        if (x.kind == kOne || x.kind == kTwo) asm volatile("prefetch.global.L2 [%0];" ::"l"(pa));
        if (x.kind == kTwo) asm volatile("prefetch.global.L2 [%0];" ::"l"(pb));
      }
    }
  }
  auto chunk = [&](int32_t c) {
    RawT va[R], vb[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const RowRef x = GetRowRef(plans, j + r * stride, end);
      int32_t src_a = 0, src_b = 0;
      if (Cfg::kDedupe && r > 0) {
        DedupeSources(GetRowRef(plans, j + (r - 1) * stride, end), x, src_a, src_b);
      }
      if ((x.kind == kOne || x.kind == kTwo) && src_a == 0) {
        va[r] = LoadRaw<Cfg::kLoad>(reinterpret_cast<const VecT*>(vals + x.a * D) + c);
      }
      if (x.kind == kTwo && src_b == 0) {
        vb[r] = LoadRaw<Cfg::kLoad>(reinterpret_cast<const VecT*>(vals + x.b * D) + c);
      }
    }
    asm volatile("" ::: "memory");  // plans are read again below, not kept
    RawT prev_a, prev_b;            // the samples row r - 1 used
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int32_t jr = j + r * stride;
      const RowRef x = GetRowRef(plans, jr, end);
      RawT a = va[r], b = vb[r];
      if (Cfg::kDedupe && r > 0) {
        int32_t src_a, src_b;
        DedupeSources(GetRowRef(plans, jr - stride, end), x, src_a, src_b);
        if (src_a == 1) a = prev_a;
        else if (src_a == 2) a = prev_b;
        if (src_b == 2) b = prev_b;
      }
      prev_a = a;
      prev_b = b;
      if (x.kind < 0) continue;
      RawT res = a;  // kOne: the sample's bits as they are
      if (x.kind == kTwo) {
        const Acc w = static_cast<Acc>(plans[jr].w);
        const VecT xa = BitCast<VecT>(a), xb = BitCast<VecT>(b);
        VecT z;
#pragma unroll
        for (int e = 0; e < N; ++e) {
          const Acc x0 = E::load(xa.v[e]);
          z.v[e] = E::store(x0 + w * (E::load(xb.v[e]) - x0));
        }
        res = BitCast<RawT>(z);
      } else if (x.kind != kOne) {
        const V fill = E::store(x.kind == kNanOut ? QuietNan<Acc>() : Acc(0));
        VecT z;
#pragma unroll
        for (int e = 0; e < N; ++e) z.v[e] = fill;
        res = BitCast<RawT>(z);
      }
      StoreRaw<Cfg::kStreamStore>(reinterpret_cast<VecT*>(out + jr * D) + c, res);
    }
  };
  if constexpr (Cfg::kOnePass) {
    if (first_chunk < chunks) chunk(first_chunk);
  } else {
    for (int32_t c = first_chunk; c < chunks; c += lanes) chunk(c);
  }
}

// One tile: queries [q0, q0 + nq) of episode b. `own` is the tile query
// this thread plans, or -1.
template <typename Cfg, typename V, typename TT, int N>
__device__ __forceinline__ void ResampleTile(const ResampleArgs& args, int64_t tile,
                                             int32_t own, Plan* plans,
                                             unsigned char* staged_raw) {
  using E = Elem<V>;
  using Acc = typename E::Acc;
  constexpr int kWarps = Cfg::kThreads / 32;
  constexpr int kWarpQ = Cfg::kQueriesPerBlock / kWarps;
  const int64_t b = tile / args.tiles;
  const int64_t q0 = (tile % args.tiles) * Cfg::kQueriesPerBlock;
  const int32_t nq = static_cast<int32_t>(
      min(static_cast<int64_t>(Cfg::kQueriesPerBlock), args.T - q0));
  const int64_t S = args.S, D = args.D;
  const int32_t warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  // Phase 1. The length, this thread's query and the staged timestamps are
  // independent loads, all in flight before the first is used (so staging
  // copies all S samples, padding included, rather than wait for n).
  const TT* t = static_cast<const TT*>(args.times) + b * args.times_stride;
  const TT* qs = static_cast<const TT*>(args.queries) + b * args.queries_stride;
  int32_t n = args.lengths[b * args.lengths_stride];
  const bool planner = own >= 0 && own < nq;
  const TT q = planner ? qs[q0 + own] : TT(0);
  if (args.stage_times) {
    TT* staged = reinterpret_cast<TT*>(staged_raw);
    StageTimes<Cfg::kThreads>(t, static_cast<int32_t>(S), staged);
    t = staged;
    __syncthreads();
  }
  // A negative length marks an episode whose timestamps the time dtype cannot
  // resolve (streams/timestamps.py): each of its queries is treated as NaN.
  const TT q_or_nan = n < 0 ? QuietNan<TT>() : q;
  n = n < 0 ? 0 : (n > S ? static_cast<int32_t>(S) : n);
  if (planner) {
    const Plan p = PlanQuery(t, n, q_or_nan, args.method, args.oor);
    plans[own] = p;
    args.valid[b * args.T + q0 + own] = p.valid;
  }
  if constexpr (Cfg::kWarpPlans) __syncwarp(); else __syncthreads();

  // Phase 2: write the output rows.
  const V* __restrict__ vals = static_cast<const V*>(args.values) + b * S * D;
  V* __restrict__ out = static_cast<V*>(args.out) + (b * args.T + q0) * D;
  if (args.method == kSlerp) {  // D == 4, one thread per query
    const int32_t first = Cfg::kWarpPlans ? warp * kWarpQ + lane : threadIdx.x;
    const int32_t end = Cfg::kWarpPlans ? min(nq, (warp + 1) * kWarpQ) : nq;
    for (int32_t j = first; j < end; j += Cfg::kWarpPlans ? 32 : Cfg::kThreads) {
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
  const int32_t group = lane >> args.lane_shift;
  const int32_t rows_per_warp = 32 >> args.lane_shift;
  int32_t j, end, stride;  // this group's rows: j, j + stride, ... < end
  if constexpr (Cfg::kWarpPlans) {
    j = warp * kWarpQ + group;
    end = min(nq, (warp + 1) * kWarpQ);
    stride = rows_per_warp;
  } else {
    j = warp * rows_per_warp + group;
    end = nq;
    stride = kWarps * rows_per_warp;
  }
  for (; j < end; j += Cfg::kRows * stride) {
    WriteRows<Cfg, V, N>(plans, j, end, stride, vals, out, D, args.chunks,
                         lane & (lanes - 1), lanes);
  }
}

template <typename Cfg, typename V, typename TT, int N>
__global__ void __launch_bounds__(Cfg::kThreads, Cfg::kMinBlocks)
    ResampleKernel(const ResampleArgs args) {
  constexpr int kWarps = Cfg::kThreads / 32;
  constexpr int kWarpQ = Cfg::kQueriesPerBlock / kWarps;
  static_assert(Cfg::kThreads % 32 == 0 && Cfg::kQueriesPerBlock % kWarps == 0, "tile shape");
  static_assert(Cfg::kWarpPlans ? kWarpQ <= 32 : Cfg::kQueriesPerBlock <= Cfg::kThreads,
                "one thread plans one query");
  __shared__ Plan plans[Cfg::kQueriesPerBlock];
  extern __shared__ __align__(16) unsigned char staged_raw[];
  const int32_t warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int32_t own = Cfg::kWarpPlans
                          ? (lane < kWarpQ ? warp * kWarpQ + lane : -1)
                          : (static_cast<int32_t>(threadIdx.x) < Cfg::kQueriesPerBlock
                                 ? static_cast<int32_t>(threadIdx.x) : -1);
  if constexpr (!Cfg::kPersistent) {
    ResampleTile<Cfg, V, TT, N>(args, blockIdx.x, own, plans, staged_raw);
  } else {
    for (int64_t tile = blockIdx.x; tile < args.num_tiles; tile += gridDim.x) {
      // Every thread is done with the previous tile's shared memory before
      // it is overwritten.
      if (tile != blockIdx.x) __syncthreads();
      ResampleTile<Cfg, V, TT, N>(args, tile, own, plans, staged_raw);
    }
  }
}

// Whether rows move as 16-byte vectors (N = 16 / sizeof(V)).
template <typename V>
bool Vectorisable(const ResampleArgs& a) {
  return a.D % (16 / sizeof(V)) == 0 && Aligned16(a.values) && Aligned16(a.out);
}

// Launches configuration Cfg with N-element vectors (N == 1 or 16 / sizeof(V)
// when Vectorisable).
template <typename Cfg, typename V, typename TT, int N>
ffi::Error LaunchCfg(cudaStream_t stream, ResampleArgs a, int64_t B) {
  a.tiles = CeilDiv(a.T, Cfg::kQueriesPerBlock);
  a.num_tiles = B * a.tiles;
  if (a.num_tiles > 0x7fffffffLL) {
    return ffi::Error::InvalidArgument("resample: too many episodes x query tiles");
  }
  a.chunks = static_cast<int32_t>(a.D / N);
  if (Cfg::kOnePass && a.chunks > 32) {
    return ffi::Error::InvalidArgument("resample: this configuration needs rows of <= 32 vectors");
  }
  a.lane_shift = 0;
  while (a.lane_shift < 5 && (1 << a.lane_shift) < a.chunks) ++a.lane_shift;
  const int64_t time_bytes = a.S * static_cast<int64_t>(sizeof(TT));
  a.stage_times = Cfg::kStage && time_bytes <= kMaxStagedTimeBytes;
  const size_t smem = a.stage_times ? static_cast<size_t>(time_bytes) : 0;
  auto* kernel = ResampleKernel<Cfg, V, TT, N>;
  int64_t grid = a.num_tiles;
  if constexpr (Cfg::kPersistent) {
    int device = 0, sms = 0, per_sm = 0;
    if (auto e = CheckCuda(cudaGetDevice(&device), "cudaGetDevice"); e.failure()) return e;
    if (auto e = CheckCuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
                           "cudaDeviceGetAttribute");
        e.failure()) {
      return e;
    }
    if (auto e = CheckCuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                               &per_sm, kernel, Cfg::kThreads, smem),
                           "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
        e.failure()) {
      return e;
    }
    grid = std::min<int64_t>(grid, std::max(1, sms * per_sm));
  }
  kernel<<<static_cast<unsigned>(grid), Cfg::kThreads, smem, stream>>>(a);
  return LastCudaError("resample kernel launch");
}

// The shape heuristic: large outputs with full tiles are bandwidth bound
// (LargeShapeCfg); everything else, the training batch included, is latency
// bound (SmallShapeCfg). slerp (D == 4), unvectorised rows and, for a
// kOnePass LargeShapeCfg, rows over 512 bytes take SmallShapeCfg.
template <typename V, typename TT>
ffi::Error LaunchResample(cudaStream_t stream, const ResampleArgs& args, int64_t B) {
  constexpr int kVec = 16 / sizeof(V);
  if (!Vectorisable<V>(args)) return LaunchCfg<SmallShapeCfg, V, TT, 1>(stream, args, B);
  const bool large = B * args.T * args.D * static_cast<int64_t>(sizeof(V)) >= kLargeOutBytes &&
                     args.T >= LargeShapeCfg::kQueriesPerBlock && args.method != kSlerp &&
                     (!LargeShapeCfg::kOnePass || args.D / kVec <= 32);
  if (large) return LaunchCfg<LargeShapeCfg, V, TT, kVec>(stream, args, B);
  return LaunchCfg<SmallShapeCfg, V, TT, kVec>(stream, args, B);
}

#ifndef ROBOCACHE_RESAMPLE_NO_HANDLER  // the microbenchmark includes this file without it
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
                    S, D, T,
                    Bt == B ? S : 0, Bq == B ? T : 0, Bl == B ? 1 : 0,
                    method, out_of_range};
  ffi::Error result = ffi::Error::InvalidArgument("resample: unsupported dtypes");
  const bool time_ok = DispatchFloat(times.element_type(), [&](auto time_tag) {
    using TT = decltype(time_tag);
    if constexpr (std::is_same_v<TT, float> || std::is_same_v<TT, double>) {
      DispatchFloat(values.element_type(), [&](auto value_tag) {
        result = LaunchResample<decltype(value_tag), TT>(stream, args, B);
      });
    }
  });
  (void)time_ok;
  return result;
}
#endif  // ROBOCACHE_RESAMPLE_NO_HANDLER

}  // namespace
}  // namespace robocache

#ifndef ROBOCACHE_RESAMPLE_NO_HANDLER
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
#endif  // ROBOCACHE_RESAMPLE_NO_HANDLER
