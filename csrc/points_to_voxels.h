// XLA FFI handler of the points_to_voxels CUDA kernels (see
// points_to_voxels.cu for the buffer layout and
// jax_robocache/points_to_voxels.py for the semantics).
#ifndef JAX_ROBOCACHE_POINTS_TO_VOXELS_H_
#define JAX_ROBOCACHE_POINTS_TO_VOXELS_H_

#include "xla/ffi/api/ffi.h"

XLA_FFI_DECLARE_HANDLER_SYMBOL(RobocachePointsToVoxels);

#endif  // JAX_ROBOCACHE_POINTS_TO_VOXELS_H_
