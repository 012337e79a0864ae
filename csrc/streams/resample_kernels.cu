// resample's kernels and launcher (resample_kernels.h states the layout).
//
// One block handles a tile of Cfg::kQueriesPerBlock queries of one episode.
// Phase 1: the episode's timestamps are staged in shared memory (coalesced,
// every load in flight at once, when they fit) and each query is planned by
// one binary search (PlanQuery); the plans go to shared memory. Phase 2: each
// output row is streamed by a group of `lanes` consecutive threads of a warp
// covering consecutive 16-byte chunks, so loads of value rows and stores of
// output rows are coalesced and native width for bf16/f16, and the plan is
// read once per row; a group loads the rows of kRows outputs before it stores
// the first. Two configurations (who plans which rows), picked by shape in
// LaunchTyped; how they were chosen: docs/perf/kernels/README.md.
#include "streams/resample_kernels.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "common/elem.cuh"
#include "streams/interp_plan.cuh"
#include "streams/row_ops.cuh"

namespace robocache {
namespace {

constexpr int64_t kMaxStagedTimeBytes = 32 * 1024;
// Calls whose output is at least this large (and whose tiles are full) are
// bandwidth bound and take LargeShapeCfg; the rest take SmallShapeCfg.
constexpr int64_t kLargeOutBytes = 8 << 20;

// Latency-bound shapes (the training batch: short rows, few queries per
// episode): the block plans its tile, one barrier, then any warp writes any row.
struct SmallShapeCfg {
  static constexpr int kThreads = 256;          // threads per block
  static constexpr int kQueriesPerBlock = 128;  // queries of one episode per tile
  static constexpr bool kWarpPlans = false;
  static constexpr bool kOnePass = false;
};

// Bandwidth-bound shapes: warp w plans and writes its own kQueriesPerBlock /
// warps (<= 32) rows, so nothing but the staging barrier couples the warps;
// rows of at most 32 16-byte vectors (512 bytes), so a thread has at most one
// chunk per row and no chunk loop keeps row addresses live (the launch refuses
// longer rows).
struct LargeShapeCfg {
  static constexpr int kThreads = 256;
  static constexpr int kQueriesPerBlock = 256;
  static constexpr bool kWarpPlans = true;
  static constexpr bool kOnePass = true;
};

// Output rows whose value loads a thread group issues before its first store
// (independent 16-byte loads in flight: 2 * kRows per thread).
constexpr int kRows = 2;

// The kernel's parameters: the call and its launch layout (set by LaunchCfg).
struct ResampleArgs : ResampleCall {
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

// A 16-byte vector as four 32-bit words; narrower ones (the unvectorised path) as they are.
template <typename VecT>
__device__ __forceinline__ Raw<VecT> LoadRaw(const VecT* p) {
  if constexpr (sizeof(VecT) == 16) {
    return *reinterpret_cast<const uint4*>(p);
  } else {
    return *p;
  }
}

template <typename VecT>
__device__ __forceinline__ void StoreRaw(VecT* p, const Raw<VecT>& v) {
  if constexpr (sizeof(VecT) == 16) {
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

// Writes output rows j, j + stride, ..., j + (kRows - 1) * stride (those
// < end) of the tile, chunks first_chunk, first_chunk + lanes, ... (just
// first_chunk with kOnePass). Every value load of a chunk's batch is issued
// before its first store; between the two phases only the loaded data stays
// in registers (plans are read again from shared memory, which keeps the
// register count, hence the occupancy, up).
template <typename Cfg, typename V, int N>
__device__ __forceinline__ void WriteRows(const Plan* plans, int32_t j, int32_t end,
                                          int32_t stride, const V* __restrict__ vals,
                                          V* __restrict__ out, int64_t D, int32_t chunks,
                                          int32_t first_chunk, int32_t lanes) {
  using E = Elem<V>;
  using Acc = typename E::Acc;
  using VecT = Vec<V, N>;
  using RawT = Raw<VecT>;
  constexpr int R = kRows;
  auto chunk = [&](int32_t c) {
    RawT va[R], vb[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const RowRef x = GetRowRef(plans, j + r * stride, end);
      if (x.kind == kOne || x.kind == kTwo) {
        va[r] = LoadRaw(reinterpret_cast<const VecT*>(vals + x.a * D) + c);
      }
      if (x.kind == kTwo) {
        vb[r] = LoadRaw(reinterpret_cast<const VecT*>(vals + x.b * D) + c);
      }
    }
    asm volatile("" ::: "memory");  // plans are read again below, not kept
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int32_t jr = j + r * stride;
      const RowRef x = GetRowRef(plans, jr, end);
      const RawT a = va[r], b = vb[r];
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
      StoreRaw(reinterpret_cast<VecT*>(out + jr * D) + c, res);
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
  n = n < 0 ? 0 : (n > S ? static_cast<int32_t>(S) : n);
  if (planner) {
    // Each query of an episode whose times the dtype cannot resolve is NaN.
    const TT q_or_nan = Unresolved(t, n) ? QuietNan<TT>() : q;
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
  for (; j < end; j += kRows * stride) {
    WriteRows<Cfg, V, N>(plans, j, end, stride, vals, out, D, args.chunks,
                         lane & (lanes - 1), lanes);
  }
}

template <typename Cfg, typename V, typename TT, int N>
__global__ void __launch_bounds__(Cfg::kThreads, 1)
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
  ResampleTile<Cfg, V, TT, N>(args, blockIdx.x, own, plans, staged_raw);
}

// Whether rows move as 16-byte vectors (N = 16 / sizeof(V)).
template <typename V>
bool Vectorisable(const ResampleArgs& a) {
  return a.D % (16 / sizeof(V)) == 0 && Aligned16(a.values) && Aligned16(a.out);
}

// Launches configuration Cfg with N-element vectors (N == 1 or 16 / sizeof(V)
// when Vectorisable).
template <typename Cfg, typename V, typename TT, int N>
Status LaunchCfg(cudaStream_t stream, ResampleArgs a, int64_t B) {
  a.tiles = CeilDiv(a.T, Cfg::kQueriesPerBlock);
  a.num_tiles = B * a.tiles;
  if (a.num_tiles > 0x7fffffffLL) {
    return Status::Invalid("resample: too many episodes x query tiles");
  }
  a.chunks = static_cast<int32_t>(a.D / N);
  if (Cfg::kOnePass && a.chunks > 32) {
    return Status::Invalid("resample: this configuration needs rows of <= 32 vectors");
  }
  a.lane_shift = 0;
  while (a.lane_shift < 5 && (1 << a.lane_shift) < a.chunks) ++a.lane_shift;
  const int64_t time_bytes = a.S * static_cast<int64_t>(sizeof(TT));
  a.stage_times = time_bytes <= kMaxStagedTimeBytes;
  const size_t smem = a.stage_times ? static_cast<size_t>(time_bytes) : 0;
  auto* kernel = ResampleKernel<Cfg, V, TT, N>;
  kernel<<<static_cast<unsigned>(a.num_tiles), Cfg::kThreads, smem, stream>>>(a);
  return Status::LastCuda("resample kernel launch");
}

// The shape heuristic: large outputs with full tiles are bandwidth bound
// (LargeShapeCfg); everything else, the training batch included, is latency
// bound (SmallShapeCfg). slerp (D == 4), unvectorised rows and rows over 512
// bytes (LargeShapeCfg is kOnePass) take SmallShapeCfg.
template <typename V, typename TT>
Status LaunchTyped(cudaStream_t stream, const ResampleArgs& args, int64_t B) {
  constexpr int kVec = 16 / sizeof(V);
  if (!Vectorisable<V>(args)) return LaunchCfg<SmallShapeCfg, V, TT, 1>(stream, args, B);
  const bool large = B * args.T * args.D * static_cast<int64_t>(sizeof(V)) >= kLargeOutBytes &&
                     args.T >= LargeShapeCfg::kQueriesPerBlock && args.method != kSlerp &&
                     (!LargeShapeCfg::kOnePass || args.D / kVec <= 32);
  if (large) return LaunchCfg<LargeShapeCfg, V, TT, kVec>(stream, args, B);
  return LaunchCfg<SmallShapeCfg, V, TT, kVec>(stream, args, B);
}

}  // namespace

Status LaunchResample(cudaStream_t stream, const ResampleCall& call, int64_t B,
                      ElemType values, ElemType times) {
  const ResampleArgs args{call};
  Status status;
  DispatchElem(values, [&](auto value_tag) {
    using V = decltype(value_tag);
    if (times == kF64) {
      status = LaunchTyped<V, double>(stream, args, B);
    } else {
      status = LaunchTyped<V, float>(stream, args, B);
    }
  });
  return status;
}

}  // namespace robocache
