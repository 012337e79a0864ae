"""jax_robocache: GPU data preprocessing for robot learning, as JAX primitives.

Ops run inside ``jit`` on GPUs through CUDA kernels registered as XLA FFI
custom calls, and everywhere else through pure ``jax.numpy`` twins with the
same semantics. Set ``JAX_ROBOCACHE_FORCE_JNP=1`` to use the twins on GPUs too.

Families: ``streams`` (time series: ``resample``, ``align``), ``voxels``
(point clouds: ``voxelize``, ``points_to_voxels``), ``episodes`` (datasets on
the device: ``EpisodeStore``, ``sample_windows``); the shared machinery is in
``_core``. docs/architecture.md follows a call from here to the kernel.
"""

from ._core.info import info
from ._core.self_test import self_test
from ._version import __version__
from .episodes import (Anchors, AnchorTable, EpisodeStore, RaggedStream, Window, WindowResult,
                       sample_windows)
from .streams.align import AlignResult, StreamAlignment, align, fuse_multimodal
from .streams.resample import resample
from .streams.stream import Stream
from .streams.timestamps import relative_timestamps
from .voxels.points_to_voxels import VoxelBatch, points_to_voxels
from .voxels.voxelize import voxelize

__all__ = ["AlignResult", "AnchorTable", "Anchors", "EpisodeStore", "RaggedStream", "Stream",
           "StreamAlignment", "VoxelBatch", "Window", "WindowResult", "__version__", "align",
           "fuse_multimodal", "info", "points_to_voxels", "relative_timestamps", "resample",
           "sample_windows", "self_test", "voxelize"]
