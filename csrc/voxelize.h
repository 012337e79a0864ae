// XLA FFI handlers of the voxelize CUDA kernels (see voxelize.cu for the
// buffer layout and jax_robocache/voxelize.py for the semantics).
//   RobocacheVoxelize:       count, occupancy, max
//   RobocacheVoxelizeBinned: sum, mean (bins the points in a scratch
//                            workspace, its last result uint8[B, bytes])
// Both are command-buffer compatible.
#ifndef JAX_ROBOCACHE_VOXELIZE_H_
#define JAX_ROBOCACHE_VOXELIZE_H_

#include <cstddef>
#include <cstdint>

#include "xla/ffi/api/ffi.h"

XLA_FFI_DECLARE_HANDLER_SYMBOL(RobocacheVoxelize);
XLA_FFI_DECLARE_HANDLER_SYMBOL(RobocacheVoxelizeBinned);

namespace robocache {

// Workspace bytes RobocacheVoxelizeBinned needs for num_clouds clouds of
// num_points points on a grid of num_voxels voxels; feature_bytes: the bytes
// of one point's features (C x item size). 0 for a batch too large for int32
// point or cell indices (the handler refuses it). Host only, no GPU.
size_t VoxelizeBinnedWorkspaceBytes(int64_t num_clouds, int64_t num_points, int64_t num_voxels,
                                    int64_t feature_bytes);

// Workspace bytes per cloud for a batch of num_clouds clouds: any shard of
// k <= num_clouds of them needs at most k times this.
size_t VoxelizeBinnedWorkspacePerCloud(int64_t num_clouds, int64_t num_points,
                                       int64_t num_voxels, int64_t feature_bytes);

}  // namespace robocache

#endif  // JAX_ROBOCACHE_VOXELIZE_H_
