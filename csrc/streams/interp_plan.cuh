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

// max as jnp.maximum computes it: NaN when either is NaN.
template <typename T>
__host__ __device__ __forceinline__ T MaxOrNan(T a, T b) {
  return (a != a || b != b) ? a + b : (a > b ? a : b);
}

// The resolution rule (docs/ops/resample.md, "Epoch timestamps"; constants in
// common/constants.h): whether the time dtype T cannot resolve an episode of n
// samples from t0 to last, in T's arithmetic, step for step as
// unresolved_spans in jax_robocache/streams/timestamps.py (the twins' rule).
// NaN or infinite edge times leave it resolved (the comparison is false).
template <typename T>
__host__ __device__ __forceinline__ bool UnresolvedSpan(T t0, T last, int32_t n) {
  if (n < 2) return false;
  constexpr T kEps = sizeof(T) == 4 ? T(1.1920928955078125e-07) : T(2.220446049250313e-16);
  const T gaps = static_cast<T>(n - 1);
  const T magnitude = MaxOrNan(t0 < T(0) ? -t0 : t0, last < T(0) ? -last : last);
  const T bound = (magnitude * T(kResolutionFactor * kEps)) * gaps;
  const T span = last - t0;
  return bound > MaxOrNan(span < T(0) ? -span : span, gaps * static_cast<T>(kMinSampleSpacingS));
}

// Whether the episode t[0..n) is unresolved: every query of it is then NaN.
template <typename T>
__host__ __device__ __forceinline__ bool Unresolved(const T* t, int32_t n) {
  return n >= 2 && UnresolvedSpan(t[0], t[n - 1], n);
}

// Number of t[lo..hi) with t <= q, plus lo (upper bound in [lo, hi)). NaN
// compares false, so the search stays in [lo, hi] whatever the data.
template <typename T>
__host__ __device__ __forceinline__ int32_t UpperBoundIn(const T* t, int32_t lo, int32_t hi,
                                                         T q) {
  while (lo < hi) {
    int32_t mid = (lo + hi) >> 1;
    if (t[mid] <= q) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// Number of t[0..n) with t <= q (upper bound): bisection over [0, n), the steps
// the jnp twin takes.
template <typename T>
__host__ __device__ __forceinline__ int32_t UpperBound(const T* t, int32_t n, T q) {
  return UpperBoundIn(t, 0, n, q);
}

// UpperBound's result on sorted t, found from a guess: gallop from t[g] (steps
// 1, 2, 4, ... towards q) to a bracket, then bisect it. When t is sorted the
// answer is unique, so any search finds the same index; this one reads about
// 2 log2(|answer - g| + 1) samples, all near g. On unsorted t the index may
// differ from UpperBound's but stays in [0, n]. g is clamped into [0, n - 1].
template <typename T>
__host__ __device__ __forceinline__ int32_t UpperBoundFrom(const T* t, int32_t n, T q,
                                                           int32_t g) {
  if (n <= 0) return 0;
  g = g < 0 ? 0 : (g > n - 1 ? n - 1 : g);
  int32_t lo = 0, hi = n, step = 1;
  if (t[g] <= q) {  // the answer is above g: probe g + 1, g + 2, g + 4, ...
    lo = g + 1;
    while (lo < n) {
      const int32_t p = lo + step - 1 < n - 1 ? lo + step - 1 : n - 1;
      if (t[p] <= q) { lo = p + 1; step <<= 1; } else { hi = p; break; }
    }
  } else {  // the answer is at or below g: probe g - 1, g - 2, g - 4, ...
    hi = g;
    while (hi > 0) {
      const int32_t p = hi - step > 0 ? hi - step : 0;
      if (t[p] <= q) { lo = p + 1; break; }
      hi = p;
      step <<= 1;
    }
  }
  return UpperBoundIn(t, lo, hi, q);
}

// The index where q would fall if t[0..n) were evenly spaced from t0 to tl: a
// guess for UpperBoundFrom (0 for NaN, a single stamp or q before t0).
template <typename T>
__host__ __device__ __forceinline__ int32_t InterpolationGuess(int32_t n, T q, T t0, T tl) {
  const T f = (q - t0) / (tl - t0);
  if (!(f > T(0))) return 0;
  if (!(f < T(1))) return n - 1;
  const int32_t g = static_cast<int32_t>(f * static_cast<T>(n - 1));
  return g < n - 1 ? g : n - 1;
}

// The upper-bound search of a planner. Bisect is UpperBound, step for step the
// twin's (resample and align: kernel and twin agree even on unsorted times).
// Interpolate guesses from the first and last stamp and gallops from there:
// the same index on sorted times, in a few loads of one or two cache lines
// when samples are about evenly spaced instead of log2(n) dependent loads
// across the episode (sample_windows, whose store checks that every episode's
// times are sorted).
struct Bisect {
  template <typename T>
  __device__ __forceinline__ static int32_t Upper(const T* t, int32_t n, T q) {
    return UpperBound(t, n, q);
  }
};

struct Interpolate {
  template <typename T>
  __device__ __forceinline__ static int32_t Upper(const T* t, int32_t n, T q) {
    if (n <= 0) return 0;
    return UpperBoundFrom(t, n, q, InterpolationGuess(n, q, t[0], t[n - 1]));
  }
};

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

// The plan of query q over t[0..n). *ub gets the upper bound of q when the
// plan searched for it (q inside [t_0, t_{n-1}]), -1 otherwise.
template <typename Search = Bisect, typename T>
__device__ __forceinline__ Plan PlanQuery(const T* t, int32_t n, T q, int32_t method,
                                          int32_t oor, int32_t* ub = nullptr) {
  Plan p{0, 0, 0.0, kOne, false};
  if (ub != nullptr) *ub = -1;
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
  const int32_t upper = Search::Upper(t, n, q);
  if (ub != nullptr) *ub = upper;
  int32_t i = upper - 1;
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
