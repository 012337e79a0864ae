"""Lowering ops in programs over several devices: batch-partitioned FFI calls, sharded avals.

The CUDA FFI targets are registered as batch partitionable; these helpers
give each custom call what XLA's partitioner and Shardy need to run it per
shard of the episode (batch) axis, keep outputs sharded like the inputs
under explicit meshes, and trace jnp twins without sharding annotations.
docs/sharding.md explains the design.
"""

from __future__ import annotations

import itertools

import jax
import numpy as np

from ..jax_compat import (ArrayMapping, SdyShardingRule, ShapedArray, ffi_lowering, mlir, no_mesh,
                          sdy_sharding_rule_to_mlir)
from .batching import batch_size

__all__ = ["batch_partitioned_ffi_call", "batch_sharded_avals", "lower_fun",
           "match_batch_sharding", "partitioned"]


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
        with no_mesh():  # avals made while tracing carry no (replicated) sharding
            ctx = ctx.replace(avals_in=[unsharded(a) for a in ctx.avals_in],
                              avals_out=[unsharded(a) for a in ctx.avals_out])
            return rule(ctx, *args, **params)

    return lowering


def _explicit_batch_sharding(shardings):
    """``NamedSharding(mesh, P(axis))`` of the first sharding whose axis 0 is split over an
    explicit mesh, or None (no sharding in types, Auto meshes, nothing split on axis 0).

    Any operand may carry it: the first operand of an op is often shared by
    every episode (a common clock, default lengths) and replicated.
    """
    for sharding in shardings:
        spec = tuple(getattr(sharding, "spec", ()) or ())
        mesh = getattr(sharding, "mesh", None)
        if spec and spec[0] is not None and getattr(mesh, "are_all_axes_explicit", False):
            return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(spec[0]))
    return None


def match_batch_sharding(primals, tangents):
    """Under an explicit mesh, gives every operand (and its tangent) the full, sharded batch.

    The JVP traces the jnp twin with sharding in types. Its ``vmap`` over
    episodes requires the mapped axis to be sharded alike, and a gather from an
    operand shared by every episode (axis 0 of size 1: a common clock, default
    lengths) with batch-sharded indices has no unambiguous sharding. So every
    operand is broadcast to the batch size (twins accept B or 1) and given the
    batch sharding of axis 0. A no-op without sharding in types or with an
    Auto/unsharded mesh.
    """
    typeof = getattr(jax, "typeof", None)
    reshard = getattr(jax.sharding, "reshard", None)
    if typeof is None or reshard is None or not primals:
        return primals, tangents
    batch = _explicit_batch_sharding(getattr(typeof(x), "sharding", None) for x in primals)
    if batch is None:
        return primals, tangents
    episodes = batch_size(*(x for x in primals if x.ndim))

    def full(x):
        if not x.ndim:
            return x
        shape = (episodes,) + tuple(x.shape[1:])
        if x.dtype == jax.dtypes.float0:  # tangent of an integer operand: no data
            return np.zeros(shape, jax.dtypes.float0)
        if x.shape[0] != episodes:
            x = jax.numpy.broadcast_to(x, shape)
        x_spec = tuple(getattr(typeof(x).sharding, "spec", ()) or ())
        return x if x_spec[:1] == tuple(batch.spec) else reshard(x, batch)

    return [full(x) for x in primals], [full(t) for t in tangents]


def batch_sharded_avals(out_avals, in_avals):
    """Gives the output avals the explicit batch sharding of the operands' axis 0.

    With sharding in types, an abstract evaluation rule that returns plain
    avals declares replicated outputs, and XLA would all-gather to honour
    that. Our ops keep the episode axis: outputs are sharded like the first
    operand whose axis 0 is sharded.
    """
    batch = _explicit_batch_sharding(getattr(a, "sharding", None) for a in in_avals)
    if batch is None:
        return out_avals
    return [a.update(sharding=batch) for a in out_avals]


def partitioned(ctx) -> bool:
    """Whether XLA's partitioner will see this lowering: a program over several devices,
    outside a fully manual region (inside ``shard_map`` the call already sees one shard)."""
    axis_context = ctx.module_context.axis_context
    num_devices = getattr(axis_context, "num_devices", None)
    if num_devices is not None:  # ShardingContext (jit)
        return num_devices > 1
    mesh = getattr(axis_context, "mesh", None)  # SPMDAxisContext (shard_map)
    if mesh is None:
        return False
    return mesh.size > 1 and set(getattr(axis_context, "manual_axes", ())) != set(mesh.axis_names)


def _sdy_batch_rule(call):
    """Shardy rule of a custom call: axis 0 of every operand and result is one factor (the
    batch); every other dimension is its own factor that must stay replicated."""
    factors, replicated = itertools.count(), []

    def mapping(value):
        dims = ["batch"]
        for _ in range(value.type.rank - 1):
            dims.append(f"d{next(factors)}")
            replicated.append(dims[-1])
        return ArrayMapping(*dims)

    operands = tuple(mapping(v) for v in call.operands)
    results = tuple(mapping(v) for v in call.results)
    rule = SdyShardingRule(operands, results, need_replication_factors=tuple(replicated))
    return sdy_sharding_rule_to_mlir(rule, [v.type for v in call.operands],
                                     [v.type for v in call.results])


def _broadcast_batch(ctx, x, aval, batch: int):
    """Lowers ``[1, ...] -> [batch, ...]`` (a broadcast XLA fuses into the slicing)."""
    out = ShapedArray((batch,) + tuple(aval.shape[1:]), aval.dtype)
    rule = lower_fun(lambda v: jax.numpy.broadcast_to(v, out.shape), multiple_results=False)
    (y,) = rule(ctx.replace(avals_in=[aval], avals_out=[out]), x)
    return y, out


def batch_partitioned_ffi_call(target: str, ctx, *args, **attrs):
    """Lowers an FFI custom call that XLA partitions along axis 0 (the batch) of every operand.

    ``register_batch_partitionable(target)`` registers the partitioner, but it
    only acts on calls that carry the ``num_batch_dims`` frontend attribute,
    and Shardy only propagates shardings through a call with a sharding rule:
    without both, XLA replicates the call and all-gathers its operands. In a
    partitioned program every operand is also broadcast to the full batch
    first: the partitioner slices each operand along axis 0, so a shared
    ``[1, ...]`` operand would reach the other shards as zero padding.
    Single-device programs and ``shard_map`` bodies get the plain call.
    """
    if not partitioned(ctx):
        return list(ffi_lowering(target)(ctx, *args, **attrs))
    batch = ctx.avals_out[0].shape[0]
    avals_in, operands = [], []
    for aval, x in zip(ctx.avals_in, args):
        if aval.shape[0] != batch:
            x, aval = _broadcast_batch(ctx, x, aval, batch)
        avals_in.append(aval)
        operands.append(x)
    frontend = mlir.ir_attribute({"num_batch_dims": "1"})
    outs = ffi_lowering(target, extra_attributes={"mhlo.frontend_attributes": frontend})(
        ctx.replace(avals_in=avals_in), *operands, **attrs)
    outs = list(outs)
    if SdyShardingRule is not None and getattr(jax.config, "jax_use_shardy_partitioner", False):
        call = outs[0].owner
        call.attributes["sdy.sharding_rule"] = _sdy_batch_rule(call)
    return outs
