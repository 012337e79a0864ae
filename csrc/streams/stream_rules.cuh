// align's per-stream rules on top of resample's plan, shared by align and
// sample_windows: the age of a query, window_mean's window and the tolerance
// (docs/ops/align.md; the jnp twin is jax_robocache/streams/align_twin.py,
// stream_episode).
#ifndef JAX_ROBOCACHE_STREAMS_STREAM_RULES_CUH_
#define JAX_ROBOCACHE_STREAMS_STREAM_RULES_CUH_

#include <cstdint>
#include <limits>

#include "common/constants.h"
#include "common/elem.cuh"
#include "streams/interp_plan.cuh"

namespace robocache {

// Plan kind (after PlanKind) of a non-empty window_mean entry: the mean of samples [a, b).
constexpr int32_t kWindowSum = 4;

// Given the plan `p` of query q (already shifted by the stream's offset) over
// t[0..n): writes the age (q - t_i, t_i the latest sample at or before q;
// +inf when there is none; NaN for a NaN query), turns a window_mean plan into
// the window's sample range [a, b) (an empty window is invalid and keeps the
// previous sample's plan), and applies the tolerance. Returns the validity.
// `known_ub`: PlanQuery's upper bound of q with the same Search, or -1.
template <typename Search = Bisect, typename TT>
__device__ __forceinline__ bool ApplyStreamRules(const TT* t, int32_t n, TT q, int32_t method,
                                                 TT window, TT tolerance, Plan& p, float& age,
                                                 int32_t known_ub = -1) {
  // samples at or before q
  const int32_t ub = known_ub >= 0 ? known_ub : Search::Upper(t, n, q);
  const int32_t latest = ub > 0 ? ub - 1 : 0;
  age = std::numeric_limits<float>::infinity();
  if (q != q) age = QuietNan<float>();
  else if (ub > 0) age = static_cast<float>(q - t[latest]);
  bool valid = p.valid;
  if (valid && method == kWindowMean) {
    const int32_t lo = Search::Upper(t, n, q - window);  // first t > q - window
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
    if (method == kPrevious) dist = q - t[p.a];
    else if (method == kNearest) dist = fabs(q - t[p.a]);
    else if (method == kWindowMean) dist = q - t[latest];
    else dist = p.kind == kTwo ? t[p.b] - t[p.a] : TT(0);  // linear, slerp
    valid = !(dist > tolerance);
  }
  return valid;
}

}  // namespace robocache

#endif  // JAX_ROBOCACHE_STREAMS_STREAM_RULES_CUH_
