"""``jax_robocache.info()``: what is installed and what each op will run on."""

from __future__ import annotations

import jax
import jaxlib

from . import extension as _extension
from .primitive import FORCE_JNP_ENV, REGISTRY, force_jnp
from .._version import __version__


def info() -> dict:
    """Returns a dict describing the installation.

    Keys: ``version``, ``jax``, ``jaxlib``, ``default_backend``,
    ``cuda_kernels_compiled``, ``cuda_kernels_registered``,
    ``cuda_architectures``, ``built_against_jaxlib``, ``kernels_unavailable_reason``,
    ``force_jnp`` (the ``JAX_ROBOCACHE_FORCE_JNP`` switch) and ``ops``, mapping
    each op to ``"cuda-ffi"`` or ``"jnp"`` on the default backend.
    """
    status = _extension.STATUS
    return {
        "version": __version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "default_backend": jax.default_backend(),
        "cuda_kernels_compiled": status.compiled,
        "cuda_kernels_registered": status.registered,
        "cuda_architectures": status.architectures,
        "built_against_jaxlib": status.built_against_jaxlib,
        "kernels_unavailable_reason": status.reason,
        "force_jnp": force_jnp(),
        "force_jnp_env": FORCE_JNP_ENV,
        "ops": {name: op.backend() for name, op in sorted(REGISTRY.items())},
    }
