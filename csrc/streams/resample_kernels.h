// resample's CUDA kernels (resample_kernels.cu) and their launcher; the FFI
// handler is resample.cc. The contract: docs/ops/resample.md. Layout taken
// (the canonical shapes built by jax_robocache/streams/resample.py):
//   values  [B, S, D]  f32 | bf16 | f16 | f64
//   times   [Bt, S]    f32 | f64, Bt in {1, B}
//   queries [Bq, T]    dtype of times, Bq in {1, B}
//   lengths [Bl]       s32, Bl in {1, B}; clamped into [0, S]
//   out     [B, T, D]  dtype of values
//   valid   [B, T]     pred
#ifndef JAX_ROBOCACHE_STREAMS_RESAMPLE_KERNELS_H_
#define JAX_ROBOCACHE_STREAMS_RESAMPLE_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/launch.h"

namespace robocache {

struct ResampleCall {
  const void* values;
  const void* times;
  const void* queries;
  const int32_t* lengths;
  void* out;
  bool* valid;
  int64_t S, D, T;  // each < 2^31
  int64_t times_stride, queries_stride, lengths_stride;  // 0 when shared
  int32_t method, oor;  // Method, OutOfRange (common/constants.h); slerp needs D == 4
};

// Launches resample of B > 0 episodes and T > 0 queries on `stream`.
Status LaunchResample(cudaStream_t stream, const ResampleCall& call, int64_t B,
                      ElemType values, ElemType times);

}  // namespace robocache

#endif  // JAX_ROBOCACHE_STREAMS_RESAMPLE_KERNELS_H_
