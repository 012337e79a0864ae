"""The machinery every op shares: one primitive, two lowerings, vmap, autodiff.

An op is written as
  * a *jnp twin*: a pure jax.numpy function of the canonical operands that
    defines the semantics (it is the lowering on every platform but CUDA and
    the reference for the CUDA kernel's behaviour),
  * an abstract evaluation rule (shapes and dtypes of the outputs),
  * optionally an XLA FFI target name: the CUDA kernel used on GPUs.

``FfiOp`` turns these into a ``Primitive`` with
  * eager evaluation (a cached ``jax.jit`` of the bind),
  * a default lowering to the twin, and a CUDA lowering to the FFI custom call
    (or to the twin when the kernels are missing or ``JAX_ROBOCACHE_FORCE_JNP``
    is set),
  * a batching rule for operands whose axis 0 is the episode axis, of size B
    or 1 (1 = shared by every episode): vmap over any operands, at any axis,
    folds the mapped axis into it (or, for the queries alone, into the query
    axis),
  * ``bind``: a differentiable bind whose JVP is the JVP of the twin, so
    gradients (forward and reverse) follow the documented semantics while the
    forward pass runs the kernel;
  * the name scope ``jax_robocache/<name>`` around everything the op adds to a
    program (custom call, twin, JVP), so XLA op metadata, ``jax.profiler``
    traces and Nsight Systems attribute time to the op (docs/profiling.md);
  * a DEBUG record on the ``jax_robocache`` logger, once per compiled shape,
    saying which lowering the op took, why, and the workspace it reserved.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp

from . import extension as _extension
from ..jax_compat import NOT_MAPPED, Primitive, ShapedArray, batching, mlir
from .partitioning import (batch_partitioned_ffi_call, batch_sharded_avals, lower_fun,
                           match_batch_sharding)

logger = logging.getLogger("jax_robocache")

#: Environment variable that forces the jax.numpy lowering even on GPUs.
FORCE_JNP_ENV = "JAX_ROBOCACHE_FORCE_JNP"


def force_jnp() -> bool:
    """Whether ``JAX_ROBOCACHE_FORCE_JNP`` asks for the jnp lowerings (read at lowering time)."""
    return os.environ.get(FORCE_JNP_ENV, "").strip().lower() not in ("", "0", "false", "no")


#: Every op defined so far, by name (``info()`` reports them).
REGISTRY: dict[str, "FfiOp"] = {}

#: (op, platforms, operand shapes, params, path) of every lowering already DEBUG-logged:
#: each is reported once per process, not on every re-trace of the same shapes.
_LOGGED_LOWERINGS: set[tuple] = set()


def _freeze(params: Mapping) -> tuple:
    return tuple(sorted(params.items()))


class FfiOp:
    """A primitive lowered to a CUDA FFI kernel on GPUs and to a jnp twin elsewhere.

    Args:
      name: short op name; the primitive is ``robocache_<name>``.
      twin: ``twin(*operands, **params) -> tuple of arrays``.
      abstract_eval: ``abstract_eval(*avals, **params) -> tuple of ShapedArray``.
      ffi_target: name of the CUDA FFI target, or None for a jnp-only op.
      ffi_attrs: maps the primitive's params to the FFI attributes.
      workspace_bytes: optional ``workspace_bytes(*avals_in, **params) -> int``,
        the device scratch one episode needs, or None when the call needs none
        (say, the params select a target without workspace); called only in
        the CUDA lowering. The FFI call then gets one more result,
        ``uint8[B, workspace_bytes]`` (the handler's last ``Ret``), that is
        dropped after the call: scratch without ``ffi::ScratchAllocator``
        (which XLA does not serve on every runtime) and without breaking
        command buffers, and it is partitioned with the batch like the rest.
      ffi_target_for: optional ``ffi_target_for(**params) -> target name``
        for an op with several FFI targets (say, one handler per group of
        modes, one of them with a workspace);
        ``ffi_target`` is then the op's primary target, reported by
        ``backend()``. Default: always ``ffi_target``.
      jnp_when: optional ``jnp_when(ctx, **params) -> str | None``, asked in
        the CUDA lowering when the kernel is available: a reason (logged) to
        lower this call to the twin instead, or None for the kernel (say, a
        call the kernel's limits or the batch partitioner cannot serve).
      full_batch_operands: optional ``full_batch_operands(num_operands,
        **params) -> indices`` of the operands the op needs per episode
        (``[B, ...]``, never a shared ``[1, ...]``; say, values the kernel
        reads at ``b * stride`` without a sharing stride). vmap broadcasts
        those; every other operand may stay shared. Default: none.
      query_operand: optional index of an operand ``[B or 1, T, ...]`` whose
        axis 1 maps one to one onto axis 1 of every output (the queries of a
        time-series op: output row t depends on query t alone). vmap over that
        operand alone then appends the mapped queries to axis 1 (no copies).
    """

    def __init__(self, name: str, *, twin: Callable, abstract_eval: Callable,
                 ffi_target: str | None = None,
                 ffi_attrs: Callable[..., dict] = lambda **params: {},
                 ffi_target_for: Callable[..., str] | None = None,
                 workspace_bytes: Callable[..., int] | None = None,
                 jnp_when: Callable[..., str | None] | None = None,
                 full_batch_operands: Callable[..., Sequence[int]] = lambda n, **params: (),
                 query_operand: int | None = None):
        self.name = name
        self.jnp_when = jnp_when
        self.full_batch_operands = full_batch_operands
        self.query_operand = query_operand
        self.workspace_bytes = workspace_bytes
        self.twin = twin
        self.ffi_target = ffi_target
        self.ffi_attrs = ffi_attrs
        self.ffi_target_for = ffi_target_for
        #: Name scope of everything this op adds to a program (custom call, twin, JVP):
        #: XLA op metadata, profiler traces and Nsight ranges carry it.
        self.scope = f"jax_robocache/{name}"
        self.prim = Primitive(f"robocache_{name}")
        self.prim.multiple_results = True
        self.prim.def_abstract_eval(
            lambda *avals, **params: batch_sharded_avals(abstract_eval(*avals, **params), avals))
        self.prim.def_impl(self._eager_impl)
        self._jnp_lowering = lower_fun(twin, multiple_results=True)
        mlir.register_lowering(self.prim, self._default_lowering)
        mlir.register_lowering(self.prim, self._cuda_lowering, platform="cuda")
        batching.primitive_batchers[self.prim] = self._batch_rule
        REGISTRY[name] = self

    # -- backend selection -------------------------------------------------
    def kernel_available(self, target: str | None = None) -> bool:
        """Whether the CUDA kernel (``target``, default the primary one) is usable."""
        target = target or self.ffi_target
        return target is not None and _extension.has_target(target) and not force_jnp()

    def backend(self, platform: str | None = None) -> str:
        """``"cuda-ffi"`` or ``"jnp"``: what this op lowers to on ``platform`` (default backend)."""
        platform = platform or jax.default_backend()
        if platform in ("gpu", "cuda") and self.kernel_available():
            return "cuda-ffi"
        return "jnp"

    def _jnp_fallback_reason(self, target: str | None) -> str:
        """Why the CUDA lowering of this op (with FFI target ``target``) runs the jnp twin."""
        if target is None:
            return "the op has no CUDA kernel"
        if force_jnp():
            return f"{FORCE_JNP_ENV} is set"
        if not _extension.STATUS.registered:
            return _extension.STATUS.reason
        return f"FFI target {target} is not compiled into the CUDA module"

    def _log_lowering(self, ctx, params: Mapping, path: str, workspace: str):
        """DEBUG-logs the lowering ``path`` taken for these operand shapes, once per shape."""
        if not logger.isEnabledFor(logging.DEBUG):
            return
        platforms = tuple(getattr(ctx.module_context, "platforms", ()) or ())
        shapes = ", ".join(getattr(a, "str_short", lambda: str(a))() for a in ctx.avals_in)
        options = ", ".join(f"{k}={v!r}" for k, v in sorted(params.items()))
        key = (self.name, platforms, shapes, options, path)
        if key in _LOGGED_LOWERINGS:
            return
        _LOGGED_LOWERINGS.add(key)
        logger.debug("jax_robocache: %s(%s; %s) on %s -> %s; workspace %s", self.name, shapes,
                     options, "/".join(platforms) or "?", path, workspace)

    def _default_lowering(self, ctx, *args, **params):
        """Every platform but CUDA: the jnp twin."""
        platforms = "/".join(getattr(ctx.module_context, "platforms", ()) or ()) or "this platform"
        self._log_lowering(ctx, params, f"jnp twin (no CUDA kernel on {platforms})",
                           "0 bytes (none reserved by jax_robocache)")
        return self._jnp_lowering(ctx, *args, **params)

    def _cuda_lowering(self, ctx, *args, **params):
        target = self.ffi_target_for(**params) if self.ffi_target_for else self.ffi_target
        if not self.kernel_available(target):
            self._log_lowering(ctx, params,
                               f"jnp twin ({self._jnp_fallback_reason(target)})",
                               "0 bytes (none reserved by jax_robocache)")
            return self._jnp_lowering(ctx, *args, **params)
        reason = self.jnp_when(ctx, **params) if self.jnp_when else None
        if reason:
            self._log_lowering(ctx, params, f"jnp twin ({reason})",
                               "0 bytes (none reserved by jax_robocache)")
            return self._jnp_lowering(ctx, *args, **params)
        attrs = self.ffi_attrs(**params)
        per_episode = (None if self.workspace_bytes is None
                       else self.workspace_bytes(*ctx.avals_in, **params))
        if per_episode is None:
            self._log_lowering(ctx, params, f"CUDA FFI target {target}", "0 bytes")
            return batch_partitioned_ffi_call(target, ctx, *args, **attrs)
        per_episode = max(int(per_episode), 1)
        episodes = ctx.avals_out[0].shape[0]
        self._log_lowering(ctx, params, f"CUDA FFI target {target}",
                           f"{episodes * per_episode} bytes ({per_episode} per episode x "
                           f"{episodes} episodes)")
        workspace = ShapedArray((episodes, per_episode), jnp.uint8)
        call_ctx = ctx.replace(avals_out=[*ctx.avals_out, workspace])
        return batch_partitioned_ffi_call(target, call_ctx, *args, **attrs)[:-1]

    # -- eager evaluation --------------------------------------------------
    @functools.lru_cache(maxsize=None)
    def _jitted(self, frozen: tuple):
        params = dict(frozen)

        def call(*args):
            with jax.named_scope(self.scope):
                return self.prim.bind(*args, **params)

        return jax.jit(call)

    def _eager_impl(self, *args, **params):
        return self._jitted(_freeze(params))(*args)

    # -- vmap ----------------------------------------------------------------
    def _batch_rule(self, args: Sequence, dims: Sequence, **params):
        """vmap of the primitive over any subset of its operands, at any axis.

        Operands carry an episode axis 0 of size B or 1 (1: shared by every
        episode). The mapped axis (size V) is folded into it: the primitive
        runs once on V * B episodes and the outputs are split back.

        * A mapped operand ``[V, B or 1, ...]`` becomes ``[V * B, ...]``.
        * An unmapped shared operand ``[1, ...]`` stays shared, unless the op
          needs that operand per episode (``full_batch_operands``): then it is
          broadcast to ``[V * B, ...]``.
        * An unmapped per-episode operand ``[B, ...]`` is tiled V times.
        * Only the query operand mapped (``query_operand``, e.g. one trajectory
          evaluated at V time shifts): the V queries are appended to each
          episode's T queries instead, ``[B, V * T]``, so nothing is copied;
          every output's axis 1 (T) then holds V blocks of T.
        """
        size = next(x.shape[d] for x, d in zip(args, dims) if d is not NOT_MAPPED)
        mapped = [i for i, d in enumerate(dims) if d is not NOT_MAPPED]
        if mapped == [self.query_operand] and self.query_operand is not None:
            return self._batch_queries(args, dims, size, **params)
        moved = [x if d is NOT_MAPPED else jnp.moveaxis(x, d, 0) for x, d in zip(args, dims)]
        sizes = {x.shape[1] if d is not NOT_MAPPED else x.shape[0]
                 for x, d in zip(moved, dims)} - {1}
        if len(sizes) > 1:
            raise ValueError(f"{self.name}: operands with episode axes {sorted(sizes)} (each "
                             "must be 1 or B)")
        episodes = sizes.pop() if sizes else 1
        full = set(self.full_batch_operands(len(args), **params))
        folded = []
        for i, (x, d) in enumerate(zip(moved, dims)):
            if d is NOT_MAPPED:
                if x.shape[0] == 1 and i not in full:
                    folded.append(x)
                    continue
                x = jnp.broadcast_to(x[None], (size,) + x.shape)
            if x.shape[1] != episodes:
                x = jnp.broadcast_to(x, (size, episodes) + x.shape[2:])
            folded.append(x.reshape((size * episodes,) + x.shape[2:]))
        outs = self.prim.bind(*folded, **params)
        outs = [o.reshape((size, episodes) + o.shape[1:]) for o in outs]
        return outs, [0] * len(outs)

    def _batch_queries(self, args, dims, size, **params):
        """vmap over the query operand alone: ``[V, Bq, T] -> [Bq, V * T]``; outputs' axis 1."""
        i = self.query_operand
        q = jnp.moveaxis(args[i], dims[i], 0)  # [V, Bq, T, ...]
        V, Bq, T = q.shape[:3]
        q = jnp.moveaxis(q, 0, 1).reshape((Bq, V * T) + q.shape[3:])
        outs = self.prim.bind(*args[:i], q, *args[i + 1:], **params)
        outs = [o.reshape((o.shape[0], V, T) + o.shape[2:]) for o in outs]
        return outs, [1] * len(outs)

    # -- autodiff ------------------------------------------------------------
    @functools.lru_cache(maxsize=None)
    def _differentiable(self, frozen: tuple):
        params = dict(frozen)

        @jax.custom_jvp
        def call(*args):
            return tuple(self.prim.bind(*args, **params))

        @call.defjvp
        def call_jvp(primals, tangents):
            outs = call(*primals)
            primals, tangents = match_batch_sharding(primals, tangents)
            _, out_tangents = jax.jvp(functools.partial(self.twin, **params), tuple(primals),
                                      tuple(tangents))
            return outs, tuple(out_tangents)

        return call

    def bind(self, *args, **params):
        """Binds the primitive; differentiable through the JVP of the jnp twin."""
        with jax.named_scope(self.scope):
            return self._differentiable(_freeze(params))(*args)
