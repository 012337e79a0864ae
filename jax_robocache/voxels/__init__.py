"""Point clouds: ``voxelize`` (dense grids) and ``points_to_voxels`` (hard voxelization), on
the shared voxel index rule (``grid``, the twin of the CUDA rule)."""

from .sizing import OversizedOutputWarning

__all__ = ["OversizedOutputWarning"]
