"""``jax_robocache.info()``: what is installed and what each op will run on."""

from __future__ import annotations

import jax
import jaxlib

from . import extension as _extension
from .primitive import FORCE_JNP_ENV, REGISTRY, force_jnp
from .._version import __version__


def gpu_device_count() -> int:
    """Number of GPUs jax sees (0 without a GPU or without a CUDA-enabled jaxlib)."""
    try:
        return len(jax.devices("gpu"))
    except RuntimeError:
        return 0


def kernels_unavailable_reason(status, gpus: int) -> str:
    """Why the ops run their jax.numpy twins instead of the CUDA kernels ("" if they do not)."""
    if status.reason:
        return status.reason
    if gpus == 0:
        return ("no GPU device: the CUDA kernels are registered but jax sees no GPU, so every "
                "op runs its jax.numpy twin")
    if force_jnp():
        return f"{FORCE_JNP_ENV} is set: every op runs its jax.numpy twin"
    return ""


def info() -> dict:
    """Returns a dict describing the installation.

    Keys: ``version``, ``jax``, ``jaxlib``, ``default_backend``, ``gpu_devices``
    (how many GPUs jax sees), ``cuda_kernels_compiled``, ``cuda_kernels_registered``
    (with XLA; says nothing about a GPU being present), ``cuda_architectures``,
    ``built_against_jaxlib``, ``kernels_unavailable_reason`` (why the ops run their
    jax.numpy twins: the module is missing or stale, there is no GPU device, or
    ``force_jnp``; "" when the CUDA kernels run), ``force_jnp`` (the
    ``JAX_ROBOCACHE_FORCE_JNP`` switch) and ``ops``, mapping each op to
    ``"cuda-ffi"`` or ``"jnp"`` on the default backend.
    """
    status = _extension.STATUS
    gpus = gpu_device_count()
    return {
        "version": __version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "default_backend": jax.default_backend(),
        "gpu_devices": gpus,
        "cuda_kernels_compiled": status.compiled,
        "cuda_kernels_registered": status.registered,
        "cuda_architectures": status.architectures,
        "built_against_jaxlib": status.built_against_jaxlib,
        "kernels_unavailable_reason": kernels_unavailable_reason(status, gpus),
        "force_jnp": force_jnp(),
        "force_jnp_env": FORCE_JNP_ENV,
        "ops": {name: op.backend() for name, op in sorted(REGISTRY.items())},
    }
