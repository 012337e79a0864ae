// voxelize's CUDA kernels and their launchers: count / occupancy / max
// (voxelize_kernels.cu) and the binned sum / mean pipeline
// (voxelize_binned_kernels.cu); the FFI handlers are voxelize.cc. The
// contract: docs/ops/voxelize.md. Layout taken (the canonical shapes built by
// jax_robocache/voxels/voxelize.py):
//   points   [Bp, N, 3]      f32, Bp in {1, B}
//   features [Bf, N, C]      f32 | bf16, Bf in {1, B} ([1, N, 0] placeholder
//                            for count/occupancy)
//   lengths  [Bl]            s32, Bl in {1, B} (valid points per cloud)
//   out      [B, X, Y, Z]    s32 (count) | f32 (occupancy)
//            [B, X, Y, Z, C] features dtype (sum, mean, max)
// with B = max(Bp, Bf, Bl), or 0 if any of them is 0; V = X * Y * Z voxels per
// cloud. The voxel of a point is VoxelId (voxel_grid.h); the cell of a kept
// point is cloud * V + voxel.
#ifndef JAX_ROBOCACHE_VOXELS_VOXELIZE_KERNELS_H_
#define JAX_ROBOCACHE_VOXELS_VOXELIZE_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "common/launch.h"
#include "common/workspace.h"
#include "voxels/voxel_grid.h"

namespace robocache {
namespace voxelize {

struct VoxelizeCall {
  const float* points;
  const void* features;
  const int32_t* lengths;
  void* out;
  int64_t B, N, C, V;  // N, V < 2^31; C is 1 for count / occupancy
  int64_t points_stride, features_stride, lengths_stride;  // 0 when shared
  GridParams grid;
};

// count, occupancy (out s32 / f32) or max (out of the features' type, f32 or
// bf16) into `out` of out_bytes > 0 bytes, which it zeroes first.
Status LaunchVoxelize(cudaStream_t stream, const VoxelizeCall& call, int32_t mode,
                      ElemType features, size_t out_bytes);

// sum or (mean) sum / count of f32 or bf16 features, with its scratch in
// `workspace` (the handler's last result, uint8[B, per cloud], sized by
// VoxelizeBinnedWorkspacePerCloud). B * N and B * V must be < 2^31.
Status LaunchVoxelizeBinned(cudaStream_t stream, const VoxelizeCall& call, ElemType features,
                            bool mean, const WorkspaceBuffer& workspace);

}  // namespace voxelize

// Workspace bytes LaunchVoxelizeBinned needs for num_clouds clouds of
// num_points points on a grid of num_voxels voxels; feature_bytes: the bytes
// of one point's features (C x item size). 0 for a batch too large for int32
// point or cell indices (the launcher refuses it). Host only, no GPU.
size_t VoxelizeBinnedWorkspaceBytes(int64_t num_clouds, int64_t num_points, int64_t num_voxels,
                                    int64_t feature_bytes);

// Workspace bytes per cloud for a batch of num_clouds clouds: any shard of
// k <= num_clouds of them needs at most k times this.
size_t VoxelizeBinnedWorkspacePerCloud(int64_t num_clouds, int64_t num_points,
                                       int64_t num_voxels, int64_t feature_bytes);

}  // namespace robocache

#endif  // JAX_ROBOCACHE_VOXELS_VOXELIZE_KERNELS_H_
