// voxelize sum / mean on the GPU (voxelize_binned.cu): points binned by
// tiles of the grid, each voxel written once with its exact sum.
#ifndef JAX_ROBOCACHE_VOXELIZE_BINNED_CUH_
#define JAX_ROBOCACHE_VOXELIZE_BINNED_CUH_

#include "voxelize_args.cuh"

namespace robocache {
namespace voxelize {

// Runs the pipeline for the sum (mean: / count) of `a`, whose features are
// bf16 or f32, with its scratch in `workspace` (the handler's last result,
// checked against VoxelizeBinnedWorkspaceBytes). A batch with 2^31 or more
// points or cells is refused.
ffi::Error VoxelizeBinnedSum(cudaStream_t stream, ffi::AnyBuffer workspace, const VoxelArgs& a,
                             bool bf16, bool mean);

}  // namespace voxelize
}  // namespace robocache

#endif  // JAX_ROBOCACHE_VOXELIZE_BINNED_CUH_
