"""jax_robocache: GPU data preprocessing for robot learning, as JAX primitives.

Ops run inside ``jit`` on GPUs through CUDA kernels registered as XLA FFI
custom calls, and everywhere else through pure ``jax.numpy`` twins with the
same semantics. Set ``JAX_ROBOCACHE_FORCE_JNP=1`` to use the twins on GPUs too.
"""

from ._info import info
from ._version import __version__
from .align import AlignResult, StreamAlignment, align, fuse_multimodal
from .resample import resample
from .stream import Stream
from .timestamps import relative_timestamps

__all__ = ["AlignResult", "Stream", "StreamAlignment", "__version__", "align", "fuse_multimodal",
           "info", "relative_timestamps", "resample"]
