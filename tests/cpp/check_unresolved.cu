// Applies UnresolvedSpan (csrc/streams/interp_plan.cuh), the resolution rule
// the resample and align kernels evaluate per episode, on the host to the
// cases tests/cpp/test_unresolved.py writes: one per line, "f" (float32) or
// "d" (float64), n, then the first and last time as C99 hex floats (exact in
// either dtype). Prints one 0 / 1 per case, in order.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "streams/interp_plan.cuh"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  FILE* in = fopen(argv[1], "r");
  if (!in) return 2;
  char kind;
  int n;
  char a[64], b[64];
  while (fscanf(in, " %c %d %63s %63s", &kind, &n, a, b) == 4) {
    const double t0 = strtod(a, nullptr), last = strtod(b, nullptr);
    const bool flag = kind == 'f' ? robocache::UnresolvedSpan(static_cast<float>(t0),
                                                              static_cast<float>(last), n)
                                  : robocache::UnresolvedSpan(t0, last, n);
    printf("%d\n", flag ? 1 : 0);
  }
  fclose(in);
  return 0;
}
