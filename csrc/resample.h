// XLA FFI handler of the resample CUDA kernel (see resample.cu for the
// buffer layout and jax_robocache/resample.py for the semantics).
#ifndef JAX_ROBOCACHE_RESAMPLE_H_
#define JAX_ROBOCACHE_RESAMPLE_H_

#include "xla/ffi/api/ffi.h"

XLA_FFI_DECLARE_HANDLER_SYMBOL(RobocacheResample);

#endif  // JAX_ROBOCACHE_RESAMPLE_H_
