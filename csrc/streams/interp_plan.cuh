// Device-side query planning shared by resample and align: one binary search
// per query decides which samples an output uses and with which weight. The
// row loop that follows reads only the samples named by the plan, so NaN in an
// unused sample never reaches the output. The rules (methods, out_of_range,
// empty episodes, NaN queries) are stated in docs/ops/resample.md; the jnp
// twin jax_robocache/streams/interp.py plans operation for operation alike.
#ifndef JAX_ROBOCACHE_STREAMS_INTERP_PLAN_CUH_
#define JAX_ROBOCACHE_STREAMS_INTERP_PLAN_CUH_

#include <cstdint>

#include "common/constants.h"

namespace robocache {

// What an output row is made of (Method and OutOfRange: common/constants.h).
enum PlanKind : int32_t { kOne = 0, kTwo = 1, kNanOut = 2, kZeroOut = 3 };

struct Plan {
  int32_t a;      // first sample used
  int32_t b;      // second sample (kTwo only)
  double w;       // weight of b (kTwo only): out = v[a] + w * (v[b] - v[a])
  int32_t kind;   // PlanKind
  bool valid;     // n > 0 and t_0 <= q <= t_{n-1}
};

// Number of t[0..n) with t <= q (upper bound). NaN compares false, so the
// search stays in [0, n] whatever the data.
template <typename T>
__device__ __forceinline__ int32_t UpperBound(const T* t, int32_t n, T q) {
  int32_t lo = 0, hi = n;
  while (lo < hi) {
    int32_t mid = (lo + hi) >> 1;
    if (t[mid] <= q) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// First index in t[0..n) with t >= q (lower bound).
template <typename T>
__device__ __forceinline__ int32_t LowerBound(const T* t, int32_t n, T q) {
  int32_t lo = 0, hi = n;
  while (lo < hi) {
    int32_t mid = (lo + hi) >> 1;
    if (t[mid] < q) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// Exactly whether tn - q < q - ti, i.e. tn + ti < 2q, in T arithmetic: the
// sum is split into its rounded value and exact error (TwoSum), so ties and
// near-ties resolve as in exact arithmetic (a float64 reference agrees).
template <typename T>
__device__ __forceinline__ bool CloserToRight(T ti, T tn, T q) {
  const T s = tn + ti;
  const T bb = s - tn;
  const T err = (tn - (s - bb)) + (ti - bb);
  const T twice = q + q;
  return s < twice || (s == twice && err < T(0));
}

template <typename T>
__device__ __forceinline__ Plan PlanQuery(const T* t, int32_t n, T q,
                                          int32_t method, int32_t oor) {
  Plan p{0, 0, 0.0, kOne, false};
  if (q != q) { p.kind = kNanOut; return p; }
  if (n <= 0) { p.kind = (oor == kNan) ? kNanOut : kZeroOut; return p; }
  const T t0 = t[0], tl = t[n - 1];
  const bool below = !(q >= t0), above = !(q <= tl);
  if (below || above) {
    if (oor == kNan) { p.kind = kNanOut; return p; }
    if (oor == kExtrapolate && n > 1) {
      const int32_t a = below ? 0 : n - 2;
      const T dt = t[a + 1] - t[a];
      if (dt > T(0)) {
        p.a = a; p.b = a + 1; p.kind = kTwo;
        p.w = static_cast<double>((q - t[a]) / dt);
        return p;
      }
    }
    // clamp (or a degenerate edge segment): hold the edge sample; nearest
    // takes the first of duplicated edge timestamps.
    if (below) p.a = 0;
    else p.a = (method == kNearest) ? LowerBound(t, n, tl) : n - 1;
    return p;
  }
  p.valid = true;
  int32_t i = UpperBound(t, n, q) - 1;
  i = i < 0 ? 0 : (i > n - 1 ? n - 1 : i);  // only reachable with unsorted t
  if (method == kPrevious) { p.a = i; return p; }
  if (method == kNearest) {
    const bool right = i < n - 1 && CloserToRight(t[i], t[i + 1], q);
    p.a = right ? i + 1 : LowerBound(t, i + 1, t[i]);
    return p;
  }
  // linear / slerp
  const T dt = (i < n - 1) ? t[i + 1] - t[i] : T(0);
  if (q == t[i] || !(dt > T(0))) { p.a = i; return p; }
  p.a = i; p.b = i + 1; p.kind = kTwo;
  p.w = static_cast<double>((q - t[i]) / dt);
  return p;
}

}  // namespace robocache

#endif  // JAX_ROBOCACHE_STREAMS_INTERP_PLAN_CUH_
