// points_to_voxels's CUDA kernels (points_to_voxels_kernels.cu) and their
// launcher; the FFI handler is points_to_voxels.cc. The contract:
// docs/ops/points_to_voxels.md. Layout taken (the canonical shapes built by
// jax_robocache/voxels/points_to_voxels.py):
//   points         [Bp, N, 3]     f32, Bp in {1, B}
//   features       [Bf, N, C]     f32, Bf in {1, B} (C may be 0)
//   lengths        [Bl]           s32, Bl in {1, B}
//   voxels         [B, M, P, W]   f32, W = 3 + C
//   coords         [B, M, 3]      s32
//   num_points     [B, M]         s32
//   num_voxels     [B]            s32
//   point_to_voxel [B, N]         s32
#ifndef JAX_ROBOCACHE_VOXELS_POINTS_TO_VOXELS_KERNELS_H_
#define JAX_ROBOCACHE_VOXELS_POINTS_TO_VOXELS_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "common/launch.h"
#include "common/workspace.h"
#include "voxels/voxel_grid.h"

namespace robocache {

struct P2VArgs {
  const float* points;
  const float* features;
  const int32_t* lengths;
  int64_t points_stride, features_stride;  // elements per cloud, 0 when shared
  int32_t lengths_stride;                  // 1, or 0 when shared
  int32_t B, N, C, M, P, W;                // B * N, M and P * W < 2^31; M, P >= 1
  int64_t G;  // voxels per cloud, < 2^31
  GridParams grid;
};

struct P2VOutputs {
  float* voxels;
  int32_t* coords;
  int32_t* num_points;
  int32_t* num_voxels;
  int32_t* point_to_voxel;
};

// Launches points_to_voxels of B > 0 clouds with its scratch in `workspace`
// (the handler's last result, uint8[B, per cloud], sized by
// PointsToVoxelsWorkspacePerCloud).
Status LaunchPointsToVoxels(cudaStream_t stream, const P2VArgs& args, const P2VOutputs& outputs,
                            const WorkspaceBuffer& workspace);

// Workspace bytes LaunchPointsToVoxels needs for num_clouds clouds of
// num_points points, max_voxels rows and a grid of grid_voxels voxels (an
// upper bound: cub's temporary storage is bounded by SortTempBound,
// common/workspace.h). Host only, no GPU.
size_t PointsToVoxelsWorkspaceBytes(int64_t num_clouds, int64_t num_points, int64_t max_voxels,
                                    int64_t grid_voxels);

// Workspace bytes per cloud for a batch of num_clouds clouds: any shard of
// k <= num_clouds of them needs at most k times this.
size_t PointsToVoxelsWorkspacePerCloud(int64_t num_clouds, int64_t num_points,
                                       int64_t max_voxels, int64_t grid_voxels);

}  // namespace robocache

#endif  // JAX_ROBOCACHE_VOXELS_POINTS_TO_VOXELS_KERNELS_H_
