"""Every version-fragile JAX import in one place.

jax_robocache supports jax/jaxlib 0.10.2 (Python 3.11) through 0.12.x. The
extension API that custom primitives need (``Primitive``, MLIR lowering
registration, batching rules) lives in modules whose location has moved
between releases; import it from here only.
"""

from __future__ import annotations

import jax

try:  # jax >= 0.4.36
    from jax.extend.core import Primitive
except ImportError:  # pragma: no cover - older jax
    from jax.core import Primitive  # type: ignore[no-redef]

from jax.interpreters import batching, mlir  # noqa: F401  (public re-exports)

try:
    from jax.core import ShapedArray
except ImportError:  # pragma: no cover - newer jax
    from jax.extend.core import ShapedArray  # type: ignore[no-redef]

try:
    from jax import shard_map  # jax >= 0.7
except ImportError:  # pragma: no cover
    from jax.experimental.shard_map import shard_map  # type: ignore[no-redef]

#: Value of a batch dimension that is not mapped (``batching.not_mapped``).
NOT_MAPPED = None

register_ffi_target = jax.ffi.register_ffi_target
ffi_lowering = jax.ffi.ffi_lowering


def x64_enabled() -> bool:
    """Whether 64-bit types are enabled (``jax_enable_x64``)."""
    return bool(jax.config.read("jax_enable_x64"))


def lower_fun(fun, multiple_results: bool):
    """``mlir.lower_fun``: lowers a traceable Python function as a lowering rule."""
    return mlir.lower_fun(fun, multiple_results=multiple_results)
