// XLA FFI handler of the align CUDA kernel (see align.cu for the buffer
// layout and jax_robocache/align.py for the semantics).
#ifndef JAX_ROBOCACHE_ALIGN_H_
#define JAX_ROBOCACHE_ALIGN_H_

#include "xla/ffi/api/ffi.h"

XLA_FFI_DECLARE_HANDLER_SYMBOL(RobocacheAlign);

#endif  // JAX_ROBOCACHE_ALIGN_H_
