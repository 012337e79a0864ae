"""The jnp twin of ``align`` (the lowering off CUDA and the reference of
csrc/streams/align_kernels.cu); the contract it implements: docs/ops/align.md.

Per stream it reuses resample's query planning (``_interp.plan_queries`` and
``_interp.combine``), so the shared methods agree exactly with ``resample``,
and adds what align defines on top: the stream's ``offset`` (the stream is
evaluated at ``q - offset``), the age of the latest sample, ``window_mean``
and the ``tolerance`` check. Every comparison and distance is computed in the
time dtype exactly as the kernel computes it.

Window sums come from a segment tree of pairwise block sums (no prefix-sum
cancellation, which would cost ~S ulps of the window sum); the kernel sums
each window sequentially, so the two agree to float32 rounding, not bitwise.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from .._core.batching import map_episodes
from .._core.codes import WINDOW_MEAN
from . import interp as _interp
from .interp import LINEAR, NAN_OOR, NEAREST, PREVIOUS, SLERP, TWO
from .timestamps import unresolved_episodes


def _window_means(values, lo, hi):
    """Means of values[lo:hi] per query: values [S, D], lo/hi int32 [T] -> acc dtype [T, D].

    A segment tree: level l holds the sums of aligned blocks of 2**l samples
    (pairwise sums of level l - 1); a window is the disjoint union of at most
    two blocks per level, taken bottom-up. Only additions of samples inside
    the window occur (no prefix-sum cancellation; a NaN or infinity reaches
    only the windows that contain it). Empty windows (hi <= lo) give 0 / 1 = 0.
    """
    acc = jnp.float64 if values.dtype == jnp.float64 else jnp.float32
    S, D = values.shape
    depth = max(1, math.ceil(math.log2(S)))
    level = jnp.pad(values.astype(acc), ((0, (1 << depth) - S), (0, 0)))
    total = jnp.zeros(lo.shape + (D,), acc)
    a, b = lo, hi
    for _ in range(depth + 1):
        size = level.shape[0]
        take = (a < b) & ((a & 1) == 1)
        total = total + jnp.where(take[:, None], level[jnp.clip(a, 0, size - 1)], 0)
        a = a + take
        take = (a < b) & ((b & 1) == 1)
        b = b - take
        total = total + jnp.where(take[:, None], level[jnp.clip(b, 0, size - 1)], 0)
        a, b = a >> 1, b >> 1
        if size > 1:
            level = level.reshape(size // 2, 2, D).sum(axis=1)
    return total / jnp.maximum(hi - lo, 1)[:, None].astype(acc)


def _age(t, ub, q):
    """q - t[ub - 1] (the latest sample at or before q), +inf when none, NaN for NaN q."""
    S = t.shape[-1]
    latest = t[jnp.clip(ub - 1, 0, max(S - 1, 0))] if S else jnp.zeros_like(q)
    age = jnp.where(ub > 0, q - latest, jnp.inf)
    return jnp.where(jnp.isnan(q), jnp.nan, age)


def _distance(t, plan, q, ub, method):
    """How far the samples used are from q (the quantity ``tolerance`` bounds)."""
    S = t.shape[-1]
    at = lambda i: t[jnp.clip(i, 0, S - 1)]  # noqa: E731
    if method == PREVIOUS:
        return q - at(plan.a)
    if method == NEAREST:
        return jnp.abs(q - at(plan.a))
    if method == WINDOW_MEAN:
        return q - at(ub - 1)
    return jnp.where(plan.kind == TWO, at(plan.b) - at(plan.a), 0)  # linear / slerp


def stream_episode(v, t, q, n, *, method, offset, tolerance, window, out_of_range):
    """One stream of one episode: v [S, D], t [S], q [T], n scalar -> (out, valid, age)."""
    S = t.shape[-1]
    q = _interp.shifted(q, offset)  # sample times + offset == queries - offset
    n = jnp.clip(n, 0, S)
    # Every query of an episode whose times the dtype cannot resolve is NaN (the resolution
    # rule of timestamps.py, which the CUDA kernel applies alike).
    q = jnp.where(unresolved_episodes(t, n, xp=jnp), jnp.asarray(jnp.nan, q.dtype), q)
    plan_method = PREVIOUS if method == WINDOW_MEAN else method
    plan = _interp.plan_queries(t, n, q, method=plan_method, out_of_range=out_of_range)
    out = _interp.combine(v, plan, method=plan_method)
    valid = plan.valid
    ub = _interp._search(t, n, q, strict=False) if S else jnp.zeros(q.shape, jnp.int32)
    age = _age(t, ub, q)
    if method == WINDOW_MEAN and S:
        lo = _interp._search(t, n, q - jnp.asarray(window, q.dtype), strict=False)
        nonempty = valid & (lo < ub)
        mean = _window_means(v, jnp.where(nonempty, lo, 0), jnp.where(nonempty, ub, 0))
        out = jnp.where(nonempty[:, None], mean.astype(v.dtype), out)
        valid = nonempty
    elif method == WINDOW_MEAN:
        valid = jnp.zeros_like(valid)
    if tolerance is not None and S:
        dist = _distance(t, plan, q, ub, method)
        valid = valid & ~(dist > jnp.asarray(tolerance, q.dtype))
    if out_of_range == NAN_OOR:
        out = jnp.where(valid[:, None], out, jnp.asarray(jnp.nan, out.dtype))
    return out, valid, age.astype(jnp.float32)


def align_twin(queries, *operands, methods, offsets, tolerances, windows, out_of_range,
               columns=None, concat_dtype=None, out_dtype=None):
    """queries [Bq, T]; per stream values [B,S,D], times [Bt,S], lengths [Bl] (Bx in {1,B}).

    Every query of an episode whose times are unresolved (timestamps.py) is NaN.

    Returns per stream (out [B,T,D], valid [B,T], age [B,T] float32), flattened, out in the
    stream's dtype (rounded once more to ``out_dtype`` when given); with ``columns`` (each
    stream's first column) instead one concatenated out [B, T, sum D] in ``concat_dtype``
    first, then per stream (valid, age).
    """
    per_stream = []
    for k, method in enumerate(methods):
        values, times, lengths = operands[3 * k:3 * k + 3]
        n = lengths.astype(jnp.int32)  # clamped per episode
        tol = None if tolerances[k] == float("inf") else tolerances[k]
        one = lambda v, t, q, m, method=method, k=k, tol=tol: stream_episode(  # noqa: E731
            v, t, q, m, method=method, offset=offsets[k], tolerance=tol, window=windows[k],
            out_of_range=out_of_range)
        per_stream.append(map_episodes(one, values, times, queries, n))
    if columns is None:
        if out_dtype is not None:
            per_stream = [(out.astype(out_dtype), *rest) for out, *rest in per_stream]
        return tuple(x for outs in per_stream for x in outs)
    order = sorted(range(len(methods)), key=lambda k: columns[k])
    concat = jnp.concatenate([per_stream[k][0].astype(concat_dtype) for k in order], axis=-1)
    return (concat,) + tuple(x for outs in per_stream for x in outs[1:])


__all__ = ["WINDOW_MEAN", "align_twin", "stream_episode", "LINEAR", "SLERP"]
