"""Every version-fragile JAX import in one place.

jax_robocache supports jax/jaxlib 0.10.2 (Python 3.11) through 0.12.x. The
extension API that custom primitives need (``Primitive``, MLIR lowering
registration, batching rules) lives in modules whose location has moved
between releases; import it from here only.
"""

from __future__ import annotations

import contextlib

import jax

try:  # jax >= 0.4.36
    from jax.extend.core import Primitive
except ImportError:  # pragma: no cover - older jax
    from jax.core import Primitive  # type: ignore[no-redef]

from jax.interpreters import ad, batching, mlir  # noqa: F401  (public re-exports)

try:
    from jax.core import ShapedArray
except ImportError:  # pragma: no cover - newer jax
    from jax.extend.core import ShapedArray  # type: ignore[no-redef]

try:  # Shardy sharding rules for custom calls (jax >= 0.5)
    from jax._src.custom_partitioning_sharding_rule import (ArrayMapping, SdyShardingRule,
                                                            sdy_sharding_rule_to_mlir)
except ImportError:  # pragma: no cover - older jax: GSPMD only
    ArrayMapping = sdy_sharding_rule_to_mlir = None
    SdyShardingRule = None

try:  # checkify's interpreter rules (an internal registry; absent: markers are not dropped)
    from jax._src.checkify import error_checks as checkify_error_checks
    import inspect as _inspect
    from jax._src import checkify as _checkify_src
    # jax >= 0.12 passes a CheckifyContext first: rule(ctx, error, enabled_errors, *args)
    CHECKIFY_RULE_TAKES_CTX = "ctx" in _inspect.signature(
        _checkify_src.div_error_check).parameters
except (ImportError, AttributeError, ValueError):  # pragma: no cover - jax moved it
    checkify_error_checks = None
    CHECKIFY_RULE_TAKES_CTX = False

__all__ = ["CHECKIFY_RULE_TAKES_CTX", "NOT_MAPPED", "checkify_error_checks", "Primitive", "SdyShardingRule", "ShapedArray", "batching",
           "ffi_lowering", "mlir", "no_mesh", "register_batch_partitionable",
           "register_ffi_target", "x64_enabled"]

#: Value of a batch dimension that is not mapped (``batching.not_mapped``).
NOT_MAPPED = None

register_ffi_target = jax.ffi.register_ffi_target
ffi_lowering = jax.ffi.ffi_lowering


def register_batch_partitionable(name: str) -> None:
    """Marks an FFI target as partitionable along its leading (batch) dimension."""
    register = getattr(jax.ffi, "register_ffi_target_as_batch_partitionable", None)
    if register is not None:
        register(name)


def x64_enabled() -> bool:
    """Whether 64-bit types are enabled (``jax_enable_x64``)."""
    return bool(jax.config.read("jax_enable_x64"))


def no_mesh():
    use_abstract_mesh = getattr(jax.sharding, "use_abstract_mesh", None)
    if use_abstract_mesh is None:
        return contextlib.nullcontext()
    return use_abstract_mesh(jax.sharding.AbstractMesh((), ()))
