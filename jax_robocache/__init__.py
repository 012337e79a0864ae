"""jax_robocache: GPU data preprocessing for robot learning, as JAX primitives.

Ops run inside ``jit`` on GPUs through CUDA kernels registered as XLA FFI
custom calls, and everywhere else through pure ``jax.numpy`` twins with the
same semantics. Set ``JAX_ROBOCACHE_FORCE_JNP=1`` to use the twins on GPUs too.
"""

from ._info import info
from ._self_test import self_test
from ._version import __version__
from .align import AlignResult, StreamAlignment, align, fuse_multimodal
from .points_to_voxels import VoxelBatch, points_to_voxels
from .resample import resample
from .stream import Stream
from .timestamps import relative_timestamps
from .voxelize import voxelize

__all__ = ["AlignResult", "Stream", "StreamAlignment", "VoxelBatch", "__version__", "align",
           "fuse_multimodal", "info", "points_to_voxels", "relative_timestamps", "resample",
           "self_test", "voxelize"]
