// The grid of the voxel ops (docs/ops/voxelize.md) and, in device code, the
// voxel index rule; it mirrors jax_robocache/voxels/grid.py operation for
// operation (float32 subtract, IEEE divide, floor) so that CPU and GPU assign
// every point identically. GridParams is a plain struct: the FFI handlers
// (host code) fill it.
#ifndef JAX_ROBOCACHE_VOXELS_VOXEL_GRID_H_
#define JAX_ROBOCACHE_VOXELS_VOXEL_GRID_H_

#include <cstdint>

namespace robocache {

struct GridParams {
  float lo[3], hi[3], size[3];
  int32_t dims[3];
};

#ifdef __CUDACC__
// Linear x-major voxel id of point (x, y, z), or -1 when it is dropped
// (outside [lo, hi), non-finite, or outside the grid). ijk receives the cell.
__device__ __forceinline__ int32_t VoxelId(const GridParams& g, const float* p,
                                           int32_t* ijk) {
  int32_t id = 0;
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    const float v = p[a];
    // __fdiv_rn: IEEE round-to-nearest division even under fast-math flags.
    const float f = floorf(__fdiv_rn(__fsub_rn(v, g.lo[a]), g.size[a]));
    if (!(v >= g.lo[a] && v < g.hi[a] && f >= 0.f && f < static_cast<float>(g.dims[a]))) {
      return -1;
    }
    ijk[a] = static_cast<int32_t>(f);
    id = id * g.dims[a] + ijk[a];
  }
  return id;
}
#endif  // __CUDACC__

}  // namespace robocache

#endif  // JAX_ROBOCACHE_VOXELS_VOXEL_GRID_H_
