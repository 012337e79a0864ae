// XLA FFI handlers of the voxelize CUDA kernels (see voxelize.cu for the
// buffer layout and jax_robocache/voxelize.py for the semantics).
//   RobocacheVoxelize:       count, occupancy, max
//   RobocacheVoxelizeSorted: sum, mean (sorts the points in a scratch
//                            workspace, its last result uint8[B, bytes])
// Both are command-buffer compatible.
#ifndef JAX_ROBOCACHE_VOXELIZE_H_
#define JAX_ROBOCACHE_VOXELIZE_H_

#include <cstddef>
#include <cstdint>

#include "xla/ffi/api/ffi.h"

XLA_FFI_DECLARE_HANDLER_SYMBOL(RobocacheVoxelize);
XLA_FFI_DECLARE_HANDLER_SYMBOL(RobocacheVoxelizeSorted);

namespace robocache {

// Workspace bytes RobocacheVoxelizeSorted needs for num_clouds clouds of
// num_points points on a grid of num_voxels voxels (an upper bound: cub's
// temporary storage is bounded by SortTempBound, workspace.h). Host only, no GPU.
size_t VoxelizeSortedWorkspaceBytes(int64_t num_clouds, int64_t num_points, int64_t num_voxels);

// Workspace bytes per cloud for a batch of num_clouds clouds: any shard of
// k <= num_clouds of them needs at most k times this.
size_t VoxelizeSortedWorkspacePerCloud(int64_t num_clouds, int64_t num_points,
                                       int64_t num_voxels);

}  // namespace robocache

#endif  // JAX_ROBOCACHE_VOXELIZE_H_
