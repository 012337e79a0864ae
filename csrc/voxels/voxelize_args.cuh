// Shared by the voxelize kernels (voxelize_kernels.cu: count, occupancy, max;
// voxelize_binned_kernels.cu: sum, mean): the kernels' parameters, the
// per-point thread mapping and the voxel of a point.
#ifndef JAX_ROBOCACHE_VOXELS_VOXELIZE_ARGS_CUH_
#define JAX_ROBOCACHE_VOXELS_VOXELIZE_ARGS_CUH_

#include <algorithm>
#include <cstdint>

#include "common/constants.h"
#include "common/elem.cuh"
#include "voxels/voxel_grid.h"
#include "voxels/voxelize_kernels.h"

namespace robocache {
namespace voxelize {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 16;  // grid-stride loops beyond this

// The kernels' parameters: the call and the per-point launch layout.
struct VoxelArgs : VoxelizeCall {
  uint32_t tiles;  // blocks per cloud in the per-point kernels
  // count/occupancy passes (ScatterSlices): block x of a per-point kernel
  // works on cloud first_cloud + x / tiles; only cells (cloud * V + voxel) in
  // [cell_lo, cell_hi) are written.
  int64_t first_cloud, cell_lo, cell_hi;
};

__device__ __forceinline__ int64_t GlobalThread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t GridStride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// Per-point kernels: one thread per point; block x covers kThreads points of
// one cloud (tile x % tiles of cloud x / tiles), so no 64-bit division.
__device__ __forceinline__ bool ThisPoint(const VoxelArgs& a, int64_t* b, int64_t* i) {
  const uint32_t cloud = blockIdx.x / a.tiles;
  *b = a.first_cloud + cloud;
  *i = static_cast<int64_t>(blockIdx.x - cloud * a.tiles) * kThreads + threadIdx.x;
  return *i < a.N;
}

// Voxel id of point i of cloud b, or -1 when it is dropped (past lengths,
// outside the range, non-finite).
__device__ __forceinline__ int32_t PointVoxel(const VoxelArgs& a, int64_t b, int64_t i) {
  if (i >= a.lengths[b * a.lengths_stride]) return -1;
  const float* p = a.points + b * a.points_stride + i * 3;
  const float xyz[3] = {p[0], p[1], p[2]};
  int32_t ijk[3];
  return VoxelId(a.grid, xyz, ijk);
}

// Blocks of a grid-stride kernel over `work` items.
inline int64_t Blocks(int64_t work) {
  return std::max<int64_t>(1, std::min(CeilDiv(work, kThreads), kMaxBlocks));
}

// Blocks of a per-point kernel (see ThisPoint).
inline int64_t PointBlocks(const VoxelArgs& a) { return a.B * a.tiles; }

// The kernels' parameters of a call: every cloud's cells, kThreads points per
// block of the per-point kernels.
inline Status MakeVoxelArgs(const VoxelizeCall& call, VoxelArgs* a) {
  *a = VoxelArgs{call, static_cast<uint32_t>(CeilDiv(call.N, kThreads)), 0, 0,
                 call.B * call.V};
  if (call.B * static_cast<int64_t>(a->tiles) > 0x7fffffffLL) {
    return Status::Invalid("voxelize: too many clouds x point tiles");
  }
  return Status();
}

}  // namespace voxelize
}  // namespace robocache

#endif  // JAX_ROBOCACHE_VOXELS_VOXELIZE_ARGS_CUH_
