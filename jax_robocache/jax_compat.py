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

from jax.interpreters import batching, mlir  # noqa: F401  (public re-exports)

try:
    from jax.core import ShapedArray
except ImportError:  # pragma: no cover - newer jax
    from jax.extend.core import ShapedArray  # type: ignore[no-redef]

__all__ = ["NOT_MAPPED", "Primitive", "ShapedArray", "batch_sharded_avals", "batching",
           "ffi_lowering", "lower_fun", "match_batch_sharding", "mlir",
           "register_batch_partitionable", "register_ffi_target", "x64_enabled"]

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


def _no_mesh():
    use_abstract_mesh = getattr(jax.sharding, "use_abstract_mesh", None)
    if use_abstract_mesh is None:
        return contextlib.nullcontext()
    return use_abstract_mesh(jax.sharding.AbstractMesh((), ()))


def lower_fun(fun, multiple_results: bool):
    """``mlir.lower_fun`` that also works on sharded operands.

    Lowering rules run outside the mesh context of the jit being lowered, but
    with sharding in types (jax >= 0.7, explicit meshes) the operands' avals
    carry shardings of that mesh, and tracing a jnp function over them fails
    or enforces sharding rules that are meaningless inside one op. The rule
    traces ``fun`` over the same shapes and dtypes without shardings; the SPMD
    partitioner then propagates the operands' shardings through the result.
    """
    rule = mlir.lower_fun(fun, multiple_results=multiple_results)

    def unsharded(aval):
        return ShapedArray(aval.shape, aval.dtype) if isinstance(aval, ShapedArray) else aval

    def lowering(ctx, *args, **params):
        with _no_mesh():  # avals made while tracing carry no (replicated) sharding
            ctx = ctx.replace(avals_in=[unsharded(a) for a in ctx.avals_in],
                              avals_out=[unsharded(a) for a in ctx.avals_out])
            return rule(ctx, *args, **params)

    return lowering


def match_batch_sharding(args):
    """Under an explicit mesh, gives every per-episode operand axis 0's sharding of ``args[0]``.

    jnp code over explicitly sharded arrays (our twins' ``vmap`` over episodes)
    requires the mapped axis to be sharded alike; operands built inside the op
    (default lengths, broadcast clocks) are replicated otherwise. A no-op
    without sharding in types or with an Auto/unsharded mesh.
    """
    typeof = getattr(jax, "typeof", None)
    reshard = getattr(jax.sharding, "reshard", None)
    if typeof is None or reshard is None or not args:
        return args
    sharding = getattr(typeof(args[0]), "sharding", None)
    spec = tuple(getattr(sharding, "spec", ()) or ())
    mesh = getattr(sharding, "mesh", None)
    if not spec or spec[0] is None or mesh is None or not getattr(mesh, "are_all_axes_explicit",
                                                                  False):
        return args
    episodes = args[0].shape[0]
    out = []
    for x in args:
        x_spec = tuple(getattr(typeof(x).sharding, "spec", ()) or ())
        if x.ndim and x.shape[0] == episodes and (not x_spec or x_spec[0] != spec[0]):
            x = reshard(x, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(spec[0])))
        out.append(x)
    return out


def batch_sharded_avals(out_avals, in_avals):
    """Gives the output avals axis 0's explicit sharding of the first operand.

    With sharding in types, an abstract evaluation rule that returns plain
    avals declares replicated outputs, and XLA would all-gather to honour
    that. Our ops keep the episode axis: outputs are sharded like operand 0.
    """
    sharding = getattr(in_avals[0], "sharding", None) if in_avals else None
    spec = tuple(getattr(sharding, "spec", ()) or ())
    mesh = getattr(sharding, "mesh", None)
    if (not spec or spec[0] is None or mesh is None
            or not getattr(mesh, "are_all_axes_explicit", False)):
        return out_avals
    out_sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(spec[0]))
    return [a.update(sharding=out_sharding) for a in out_avals]
