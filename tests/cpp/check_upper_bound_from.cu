// Checks UpperBoundFrom and InterpolationGuess (csrc/streams/interp_plan.cuh),
// sample_windows' search, against UpperBound's bisection on the host: on
// sorted times (with repeated stamps, jitter, gaps, +-inf) every guess must
// give UpperBound's index for every query (stamps, midpoints, beyond the ends,
// NaN); on unsorted times the index must stay in [0, n]. Built and run by
// tests/cpp/test_upper_bound_from.py; prints "violations 0" and exits 0 when
// every check holds.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "streams/interp_plan.cuh"

using robocache::InterpolationGuess;
using robocache::UpperBound;
using robocache::UpperBoundFrom;

static long violations = 0, checks = 0;

template <typename T>
void Check(const std::vector<T>& t, T q, int32_t g, bool sorted) {
  const int32_t n = static_cast<int32_t>(t.size());
  const int32_t got = UpperBoundFrom(t.data(), n, q, g);
  ++checks;
  const bool ok = sorted ? got == UpperBound(t.data(), n, q) : (got >= 0 && got <= n);
  if (!ok && violations++ < 10) {
    printf("n=%d q=%g g=%d sorted=%d: got %d, UpperBound %d\n", n, static_cast<double>(q), g,
           sorted, got, UpperBound(t.data(), n, q));
  }
}

template <typename T>
void Run(std::mt19937_64& rng, bool sorted) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int trial = 0; trial < 3000; ++trial) {
    const int32_t n = trial < 40 ? trial : static_cast<int32_t>(u(rng) * 3000);
    std::vector<T> t(n);
    double x = u(rng) * 10 - 5;
    const double rate = std::pow(10.0, u(rng) * 4);
    const double dup = u(rng) * 0.5, gap = u(rng) * 0.02;
    for (int32_t i = 0; i < n; ++i) {
      if (u(rng) >= dup) x += (0.7 + 0.6 * u(rng)) / rate;  // a repeated stamp otherwise
      if (u(rng) < gap) x += 100 * u(rng) / rate;          // a dropout
      t[i] = static_cast<T>(x);
    }
    if (n > 2 && u(rng) < 0.05) t[0] = -std::numeric_limits<T>::infinity();
    if (n > 2 && u(rng) < 0.05) t[n - 1] = std::numeric_limits<T>::infinity();
    if (!sorted) {
      for (int32_t i = 0; i < n; ++i) {
        if (u(rng) < 0.2) t[i] = static_cast<T>(u(rng) * 20 - 10);
        if (u(rng) < 0.02) t[i] = std::numeric_limits<T>::quiet_NaN();
      }
    }
    std::vector<T> qs = {std::numeric_limits<T>::quiet_NaN(),
                         std::numeric_limits<T>::infinity(),
                         -std::numeric_limits<T>::infinity(), T(-1e30), T(1e30)};
    for (int32_t k = 0; k < 40 && n > 0; ++k) {
      const int32_t i = static_cast<int32_t>(u(rng) * n);
      qs.push_back(t[i]);
      if (i + 1 < n) qs.push_back(static_cast<T>(0.5 * (double(t[i]) + double(t[i + 1]))));
      qs.push_back(std::nextafter(t[i], T(-1e30)));
      qs.push_back(std::nextafter(t[i], T(1e30)));
      qs.push_back(static_cast<T>(t[i] - T(0.02)));
    }
    const T t0 = n > 0 ? t[0] : T(0), tl = n > 0 ? t[n - 1] : T(0);
    for (const T q : qs) {
      Check(t, q, InterpolationGuess(n, q, t0, tl), sorted);
      Check(t, q, static_cast<int32_t>(u(rng) * (n + 2)) - 1, sorted);
      Check(t, q, 0, sorted);
      Check(t, q, n - 1, sorted);
      const int32_t g = InterpolationGuess(n, q, t0, tl);
      if (n > 0 && (g < 0 || g > n - 1) && violations++ < 10) {
        printf("InterpolationGuess %d outside [0, %d)\n", g, n);
      }
    }
  }
}

int main() {
  std::mt19937_64 rng(20261207);
  Run<float>(rng, true);
  Run<double>(rng, true);
  Run<float>(rng, false);
  Run<double>(rng, false);
  printf("checks %ld violations %ld\n", checks, violations);
  return violations == 0 ? 0 : 1;
}
