"""jax_robocache: GPU data preprocessing for robot learning, as JAX primitives.

Ops run inside ``jit`` on GPUs through CUDA kernels registered as XLA FFI
custom calls, and everywhere else through pure ``jax.numpy`` twins with the
same semantics. Set ``JAX_ROBOCACHE_FORCE_JNP=1`` to use the twins on GPUs too.
"""

from ._info import info
from ._version import __version__
from .resample import resample
from .timestamps import relative_timestamps
from .voxelize import voxelize

__all__ = ["__version__", "info", "relative_timestamps", "resample", "voxelize"]
