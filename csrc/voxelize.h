// XLA FFI handlers of the voxelize CUDA kernels (see voxelize.cu for the
// buffer layout and jax_robocache/voxelize.py for the semantics).
//   RobocacheVoxelize:       count, occupancy, max (command-buffer compatible)
//   RobocacheVoxelizeSorted: sum, mean (sorts the points: scratch memory)
#ifndef JAX_ROBOCACHE_VOXELIZE_H_
#define JAX_ROBOCACHE_VOXELIZE_H_

#include "xla/ffi/api/ffi.h"

XLA_FFI_DECLARE_HANDLER_SYMBOL(RobocacheVoxelize);
XLA_FFI_DECLARE_HANDLER_SYMBOL(RobocacheVoxelizeSorted);

#endif  // JAX_ROBOCACHE_VOXELIZE_H_
