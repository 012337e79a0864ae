// Checks robocache::SortTempBound (csrc/common/workspace.h) against cub's own
// size query of DeviceRadixSort::SortPairs with DoubleBuffers (what the
// points_to_voxels launcher calls), for every tuning policy compiled in,
// 32/64-bit keys and offsets and a range of sizes. Host only: the policy is
// chosen by an explicit PTX version, so no GPU is needed. Built and run by
// `ROBOCACHE_CPP_TESTS=1 python -m pytest tests/cpp` (after a CUDA/CCCL
// upgrade); by hand, from the repository root:
//   GC=""; for a in 75 80 86 89 90 100 120; do GC="$GC -gencode arch=compute_$a,code=sm_$a"; done
//   nvcc -std=c++17 $GC -Icsrc tests/cpp/check_sort_workspace_bound.cu -o /tmp/check_bound \
//     && /tmp/check_bound
// (every PTX version in `ptxs` must be compiled in; exit status 1 on a violation).
#include <cub/device/device_radix_sort.cuh>
#include <cstdio>
#include <cstdint>
#include "common/workspace.h"

template <typename K, typename NumT>
size_t Exact(NumT n, int end_bit, int ptx) {
  using Offset = cub::detail::choose_offset_t<NumT>;
  using D = cub::DispatchRadixSort<cub::SortOrder::Ascending, K, int32_t, Offset>;
  size_t bytes = 0;
  cub::DoubleBuffer<K> k(nullptr, nullptr);
  cub::DoubleBuffer<int32_t> v(nullptr, nullptr);
  D d(nullptr, bytes, k, v, static_cast<Offset>(n), 0, end_bit, true, 0, ptx);
  cudaError_t e = D::max_policy_t::Invoke(ptx, d);
  if (e != cudaSuccess) { printf("error %d\n", (int)e); return ~size_t(0); }
  return bytes;
}

int main() {
  const int ptxs[] = {750, 800, 860, 890, 900, 1000, 1200};
  long long checked = 0, bad = 0;
  double worst_ratio = 0;
  for (int ptx : ptxs) {
    for (int64_t n : {1LL, 100LL, 3000LL, 5000LL, 100000LL, 1LL << 20, (1LL << 20) + 7, 3LL << 24, (1LL << 28) - 1, 1LL << 28, (1LL << 28) + 1, 600000000LL, 2000000000LL}) {
      for (int eb : {1, 8, 9, 17, 24, 31, 32, 33, 40, 63, 64}) {
        size_t bound = robocache::SortTempBound(n, eb);
        size_t e32 = eb <= 32 ? Exact<uint32_t, int32_t>(static_cast<int32_t>(n), eb, ptx) : 0;
        size_t e64 = Exact<uint64_t, int32_t>(static_cast<int32_t>(n), eb, ptx);
        size_t e64l = Exact<uint64_t, int64_t>(n, eb, ptx);
        size_t e32l = eb <= 32 ? Exact<uint32_t, int64_t>(n, eb, ptx) : 0;
        for (size_t e : {e32, e64, e64l, e32l}) {
          ++checked;
          if (e > bound) { ++bad; printf("BAD ptx=%d n=%lld eb=%d exact=%zu bound=%zu\n", ptx, (long long)n, eb, e, bound); }
          if (e > 1) { double r = double(bound) / e; if (r > worst_ratio) worst_ratio = r; }
        }
      }
    }
  }
  printf("checked %lld, violations %lld, max bound/exact %.2f\n", checked, bad, worst_ratio);
  printf("example n=1M eb=32 ptx=900: exact=%zu bound=%zu\n", Exact<uint32_t,int32_t>(1<<20, 32, 900), robocache::SortTempBound(1<<20, 32));
  return bad != 0;
}
