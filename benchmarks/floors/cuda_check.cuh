// CUDA_CHECK(call): the kernel microbenchmarks' check of a CUDA runtime call;
// prints the call, file, line and CUDA's message, then exits with status 1.
#ifndef JAX_ROBOCACHE_BENCHMARKS_CUDA_CHECK_CUH_
#define JAX_ROBOCACHE_BENCHMARKS_CUDA_CHECK_CUH_

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#define CUDA_CHECK(call)                                                                \
  do {                                                                                  \
    cudaError_t status_ = (call);                                                       \
    if (status_ != cudaSuccess) {                                                       \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call,                 \
                   cudaGetErrorString(status_));                                        \
      std::exit(1);                                                                     \
    }                                                                                   \
  } while (0)

#endif  // JAX_ROBOCACHE_BENCHMARKS_CUDA_CHECK_CUH_
