// Shared by the voxelize kernels (voxelize.cu: count, occupancy, max and the
// handlers; voxelize_binned.cu: sum, mean): the parsed call, the per-point
// thread mapping and the voxel of a point.
#ifndef JAX_ROBOCACHE_VOXELIZE_ARGS_CUH_
#define JAX_ROBOCACHE_VOXELIZE_ARGS_CUH_

#include <algorithm>
#include <cstdint>

#include "ffi_common.h"
#include "voxel_grid.cuh"

namespace robocache {
namespace voxelize {

// Mode codes shared with jax_robocache/voxelize.py (MODES).
enum Mode : int32_t { kCount = 0, kOccupancy = 1, kSum = 2, kMean = 3, kMax = 4 };

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 16;  // grid-stride loops beyond this

struct VoxelArgs {
  const float* points;
  const void* features;
  const int32_t* lengths;
  void* out;
  int64_t B, N, C, V;
  int64_t points_stride, features_stride, lengths_stride;  // 0 when shared
  GridParams grid;
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

}  // namespace voxelize
}  // namespace robocache

#endif  // JAX_ROBOCACHE_VOXELIZE_ARGS_CUH_
