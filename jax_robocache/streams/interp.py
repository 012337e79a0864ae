"""jax.numpy query planning: the twin of csrc/streams/interp_plan.cuh (resample and align share it);
the semantics it implements: docs/ops/resample.md.

For each query the plan names the samples an output uses and their weight:
``kind`` ONE -> v[a]; TWO -> v[a] + w (v[b] - v[a]) (slerp for quaternions);
NAN -> NaN; ZERO -> 0. The binary searches below execute the same steps as
the CUDA kernel, so both agree even on unsorted data (where the result is
unspecified but always in bounds).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._core.contract import METHODS, OUT_OF_RANGE

ONE, TWO, NAN, ZERO = 0, 1, 2, 3
LINEAR, NEAREST, PREVIOUS, SLERP = (METHODS[m] for m in ("linear", "nearest", "previous", "slerp"))
CLAMP, NAN_OOR, EXTRAPOLATE = (OUT_OF_RANGE[m] for m in ("clamp", "nan", "extrapolate"))

# Quaternions closer than this (|dot|) are interpolated linearly then normalised.
SLERP_LINEAR_THRESHOLD = 0.9995


class Plan(NamedTuple):
    a: jax.Array  # int32 [..., T]
    b: jax.Array  # int32 [..., T]
    w: jax.Array  # weight of b, float [..., T]
    kind: jax.Array  # int32 [..., T]
    valid: jax.Array  # bool [..., T]


def rounded(x):
    """``x`` as computed, each of its roundings kept: XLA's simplifier folds chains of
    constants (``(q - offset) - window`` becomes ``q - (offset + window)``, one rounding
    instead of the two that docs/ops/align.md states and the CUDA kernels perform), so
    every rounded step that a constant follows passes through an optimization barrier."""
    return jax.lax.optimization_barrier(x)


def shifted(q, offset: float):
    """``q - offset`` in ``q``'s dtype (the stream read at its latency-shifted time), with
    ``q`` as given and the subtraction each rounded once (``rounded``)."""
    q = rounded(q)
    return rounded(q - jnp.asarray(offset, q.dtype)) if offset else q


def _search(t, n, q, *, strict: bool):
    """Binary search of q [T] in t[0:n] (t [S], n scalar), as in the kernel.

    strict=False: number of t <= q (upper bound); strict=True: number of t < q
    (lower bound). ``n`` may also be an array broadcastable to q.
    """
    S = t.shape[-1]
    lo = jnp.zeros(q.shape, jnp.int32)
    hi = jnp.broadcast_to(n, q.shape).astype(jnp.int32)
    for _ in range(max(1, math.ceil(math.log2(S + 1)))):
        active = lo < hi
        mid = (lo + hi) >> 1
        tm = t[jnp.clip(mid, 0, max(S - 1, 0))]
        right = (tm < q) if strict else (tm <= q)
        lo = jnp.where(active & right, mid + 1, lo)
        hi = jnp.where(active & ~right, mid, hi)
    return lo


def _closer_to_right(ti, tn, q):
    """Exactly whether tn - q < q - ti (tn + ti < 2q via TwoSum); mirrors CloserToRight."""
    s = tn + ti
    bb = s - tn
    err = (tn - (s - bb)) + (ti - bb)
    twice = q + q
    return (s < twice) | ((s == twice) & (err < 0))


def plan_queries(t, n, q, *, method: int, out_of_range: int) -> Plan:
    """Plans queries q [T] into one episode's samples t [S] with n valid (scalar int32)."""
    S = t.shape[-1]
    if S == 0:
        kind = jnp.full(q.shape, NAN if out_of_range == NAN_OOR else ZERO, jnp.int32)
        kind = jnp.where(jnp.isnan(q), NAN, kind)
        zeros = jnp.zeros(q.shape, jnp.int32)
        return Plan(zeros, zeros, jnp.zeros(q.shape, t.dtype), kind, jnp.zeros(q.shape, bool))
    last = jnp.maximum(n - 1, 0)
    t0, tl = t[0], t[last]
    below, above = ~(q >= t0), ~(q <= tl)
    outside = below | above
    zero = jnp.zeros(q.shape, jnp.int32)
    # Weights are computed from a NaN query's stand-in t0: its plan is NAN whatever they
    # are, and a NaN in an unselected branch would make the gradient w.r.t. the times NaN.
    q_w = jnp.where(jnp.isnan(q), t0, q)

    # Inside the range.
    i = jnp.clip(_search(t, n, q, strict=False) - 1, 0, last)
    ti = t[i]
    has_next = i < n - 1
    t_next = t[jnp.minimum(i + 1, S - 1)]
    if method == PREVIOUS:
        a, b, w, kind = i, i, jnp.zeros_like(q), zero + ONE
    elif method == NEAREST:
        right = has_next & _closer_to_right(ti, t_next, q)
        first_dup = _search(t, i + 1, ti, strict=True)
        a = jnp.where(right, i + 1, first_dup)
        b, w, kind = a, jnp.zeros_like(q), zero + ONE
    else:  # linear / slerp
        dt = jnp.where(has_next, t_next - ti, 0)
        two = (q != ti) & (dt > 0)
        a, b = i, jnp.where(two, i + 1, i)
        w = jnp.where(two, (q_w - ti) / jnp.where(two, dt, 1), 0)
        kind = jnp.where(two, TWO, ONE)

    # Outside the range.
    if out_of_range == NAN_OOR:
        o_a, o_b, o_w, o_kind = zero, zero, jnp.zeros_like(q), zero + NAN
    else:
        edge_last = (_search(t, n, tl, strict=True) if method == NEAREST else last)
        o_a = jnp.where(below, 0, edge_last + zero)
        o_b, o_w, o_kind = o_a, jnp.zeros_like(q), zero + ONE
        if out_of_range == EXTRAPOLATE:
            s = jnp.where(below, 0, jnp.maximum(n - 2, 0)) + zero
            ts, ts1 = t[s], t[jnp.minimum(s + 1, S - 1)]
            seg = jnp.where(n > 1, ts1 - ts, 0)
            ok = seg > 0
            o_a = jnp.where(ok, s, o_a)
            o_b = jnp.where(ok, s + 1, o_a)
            o_w = jnp.where(ok, (q_w - ts) / jnp.where(ok, seg, 1), 0)
            o_kind = jnp.where(ok, TWO, ONE)

    a = jnp.where(outside, o_a, a)
    b = jnp.where(outside, o_b, b)
    w = jnp.where(outside, o_w, w)
    kind = jnp.where(outside, o_kind, kind)
    empty = n <= 0
    kind = jnp.where(empty, NAN if out_of_range == NAN_OOR else ZERO, kind)
    kind = jnp.where(jnp.isnan(q), NAN, kind)
    valid = ~outside & ~empty & ~jnp.isnan(q)
    return Plan(a.astype(jnp.int32), b.astype(jnp.int32), w, kind.astype(jnp.int32), valid)


def _slerp_rows(va, vb, w, kind):
    """Normalised slerp along the shorter arc of quaternion rows [..., 4] (acc dtype)."""
    dot = jnp.sum(va * vb, axis=-1, keepdims=True)
    sign = jnp.where(dot < 0, -1.0, 1.0).astype(va.dtype)
    dot = dot * sign
    w = w[..., None]
    far = dot <= SLERP_LINEAR_THRESHOLD
    theta = jnp.arccos(jnp.where(far, dot, 0.5))  # 0.5: any safe value when not far
    inv_sin = 1.0 / jnp.sin(theta)
    s0 = jnp.where(far, jnp.sin((1 - w) * theta) * inv_sin, 1 - w)
    s1 = jnp.where(far, jnp.sin(w * theta) * inv_sin, w)
    r = jnp.where((kind == TWO)[..., None], s0 * va + s1 * sign * vb, va)
    return r / jnp.sqrt(jnp.sum(r * r, axis=-1, keepdims=True))


def combine(values, plan: Plan, *, method: int):
    """Evaluates a plan: values [S, D] (one episode), plan fields [T] -> [T, D] in values' dtype."""
    acc = jnp.float64 if values.dtype == jnp.float64 else jnp.float32
    S = values.shape[0]
    if S == 0:
        va = vb = jnp.zeros(plan.a.shape + values.shape[1:], acc)
    else:
        va = values[jnp.clip(plan.a, 0, S - 1)].astype(acc)
        vb = values[jnp.clip(plan.b, 0, S - 1)].astype(acc)
    w = plan.w.astype(acc)
    if method == SLERP:
        out = _slerp_rows(va, vb, w, plan.kind)
    else:
        two = (plan.kind == TWO)[..., None]
        out = jnp.where(two, va + w[..., None] * (vb - va), va)
    kind = plan.kind[..., None]
    out = jnp.where(kind == NAN, jnp.nan, jnp.where(kind == ZERO, 0, out))
    return out.astype(values.dtype)
