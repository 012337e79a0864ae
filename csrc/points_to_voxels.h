// XLA FFI handler of the points_to_voxels CUDA kernels (see
// points_to_voxels.cu for the buffer layout and
// jax_robocache/points_to_voxels.py for the semantics). Command-buffer
// compatible; its scratch is its last result, a uint8[B, bytes] workspace.
#ifndef JAX_ROBOCACHE_POINTS_TO_VOXELS_H_
#define JAX_ROBOCACHE_POINTS_TO_VOXELS_H_

#include <cstddef>
#include <cstdint>

#include "xla/ffi/api/ffi.h"

XLA_FFI_DECLARE_HANDLER_SYMBOL(RobocachePointsToVoxels);

namespace robocache {

// Workspace bytes RobocachePointsToVoxels needs for num_clouds clouds of
// num_points points, max_voxels rows and a grid of grid_voxels voxels (an
// upper bound: cub's temporary storage is bounded by SortTempBound,
// workspace.h). Host only, no GPU.
size_t PointsToVoxelsWorkspaceBytes(int64_t num_clouds, int64_t num_points, int64_t max_voxels,
                                    int64_t grid_voxels);

// Workspace bytes per cloud for a batch of num_clouds clouds: any shard of
// k <= num_clouds of them needs at most k times this.
size_t PointsToVoxelsWorkspacePerCloud(int64_t num_clouds, int64_t num_points,
                                       int64_t max_voxels, int64_t grid_voxels);

}  // namespace robocache

#endif  // JAX_ROBOCACHE_POINTS_TO_VOXELS_H_
