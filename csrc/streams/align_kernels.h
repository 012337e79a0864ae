// align's CUDA kernel (align_kernels.cu) and its launcher: many sensor streams
// evaluated on one query clock in one launch; the FFI handler is align.cc.
// The contract: docs/ops/align.md. Layout taken (the canonical shapes built by
// jax_robocache/streams/align.py), K <= kMaxStreams streams:
//   queries       [Bq, T]        f32 | f64, Bq in {1, B}
//   per stream k:
//     values_k    [B, S_k, D_k]  f32 | bf16 | f16 | f64
//     times_k     [Bt_k, S_k]    dtype of queries, Bt_k in {1, B}
//     lengths_k   [Bl_k]         s32, Bl_k in {1, B}; clamped into [0, S]
//     out_k       [B, T, D_k]    dtype of values_k, any of f32/bf16/f16 for
//                                f32/bf16/f16 values, or f32 for f64 values (the
//                                result rounded to the stream's dtype, then
//                                converted); or columns of one shared
//                                out [B, T, sum_k D_k] of such a dtype
//     valid_k     [B, T]         pred
//     age_k       [B, T]         f32
#ifndef JAX_ROBOCACHE_STREAMS_ALIGN_KERNELS_H_
#define JAX_ROBOCACHE_STREAMS_ALIGN_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/constants.h"
#include "common/launch.h"

namespace robocache {

struct AlignStream {
  const void* values;
  const void* times;
  const int32_t* lengths;
  void* out;  // this stream's first output column
  bool* valid;
  float* age;
  int64_t S, D;  // each < 2^31
  int64_t out_stride;  // elements between output rows (D, or sum D when concatenated)
  int64_t times_stride, lengths_stride;  // 0 when shared by all episodes
  double offset, tolerance, window;  // tolerance +inf: none
  int32_t method;  // Method or kWindowMean (common/constants.h)
  int32_t value_type, out_type;  // ElemType (out_type: see the layout above)
  int32_t item, out_item;  // bytes per value / output element
  // Byte alignment (a power of two <= 16) of the values' base address, and of every output
  // row's first column (base, column and row width in bytes); the launcher picks the widest
  // vector access both allow.
  int32_t values_align, out_align;
};

struct AlignCall {
  AlignStream streams[kMaxStreams];
  const void* queries;
  int64_t T;
  int64_t queries_stride;  // 0 when shared
  int32_t K;               // 1 ... kMaxStreams
  int32_t oor;             // OutOfRange (common/constants.h)
};

// Launches align of B > 0 episodes and T > 0 queries on `stream`; time_type
// (kF32 or kF64) is the dtype of the queries and of every stream's times.
Status LaunchAlign(cudaStream_t stream, const AlignCall& call, int64_t B, ElemType time_type);

}  // namespace robocache

#endif  // JAX_ROBOCACHE_STREAMS_ALIGN_KERNELS_H_
