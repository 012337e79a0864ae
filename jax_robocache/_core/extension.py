"""Loads the compiled CUDA module (if it was built) and registers its FFI targets.

The module ``jax_robocache._robocache_cuda`` exists only when a CUDA compiler
was found at install time. Its handlers were compiled against the XLA FFI
headers of one jaxlib (``built_against_jaxlib()``); XLA may refuse a handler
built against a newer FFI API than the running jaxlib implements, so the
targets are registered only when the running jaxlib is at least that version,
and only when the module's codes and limits (``constants()``, defined in
csrc/common/constants.h) equal the package's copy in ``_core/codes.py``.
Otherwise every op lowers to its jax.numpy twin and ``info()`` says why.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass

import jaxlib

from ..jax_compat import register_batch_partitionable, register_ffi_target
from . import codes

logger = logging.getLogger("jax_robocache")


@dataclass(frozen=True)
class ExtensionStatus:
    compiled: bool  # the CUDA module was built and imports
    registered: bool  # its FFI targets are registered with XLA
    architectures: str  # CUDA architectures compiled in ("" if none)
    built_against_jaxlib: str
    reason: str  # why the kernels are unusable ("" when registered)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _load() -> tuple[ExtensionStatus, dict, object]:
    try:
        module = importlib.import_module("jax_robocache._robocache_cuda")
    except ImportError as err:
        return ExtensionStatus(False, False, "", "", f"CUDA module not built ({err})"), {}, None
    built = module.built_against_jaxlib()
    archs = module.cuda_architectures()
    if _version_tuple(jaxlib.__version__) < _version_tuple(built):
        reason = (f"kernels were compiled against jaxlib {built} but jaxlib "
                  f"{jaxlib.__version__} is running; rebuild jax_robocache with this jaxlib")
        logger.warning("jax_robocache: %s; using the jax.numpy lowerings", reason)
        return ExtensionStatus(True, False, archs, built, reason), {}, None
    reason = codes.check_against(module)
    if reason:
        logger.warning("jax_robocache: %s; using the jax.numpy lowerings", reason)
        return ExtensionStatus(True, False, archs, built, reason), {}, None
    targets = dict(module.registrations())
    for name, capsule in targets.items():
        register_ffi_target(name, capsule, platform="CUDA", api_version=1)
        # Axis 0 of every operand/result is the episode axis: with batch-sharded
        # inputs XLA runs the custom call per shard instead of gathering.
        register_batch_partitionable(name)
    return ExtensionStatus(True, True, archs, built, ""), targets, module


STATUS, TARGETS, _MODULE = _load()


def has_target(name: str) -> bool:
    """Whether the CUDA FFI target ``name`` is compiled in and registered."""
    return name in TARGETS


def module_function(name: str):
    """A host function of the registered CUDA module (say, a workspace size function).

    Only called from CUDA lowerings, which run only when the targets are registered.
    """
    if _MODULE is None:
        raise RuntimeError(f"jax_robocache: the CUDA module is not usable ({STATUS.reason})")
    return getattr(_MODULE, name)
