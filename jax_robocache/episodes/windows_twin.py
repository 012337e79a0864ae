"""The jnp twin of ``sample_windows``: the lowering off CUDA and the reference for a kernel.

Operands (``windows.py`` builds them): ``episode [B]`` int32 (-1 for an
episode outside the store), ``anchor [B]`` in the time dtype, then per window
four arrays of its stream, each with a leading axis of size 1 (shared by the
batch) or B (one store per batch element, after a ``vmap`` over the store):
``values [., N, D]``, ``times [., N]``, ``offsets [., E + 1]`` int32 and
``mask [., N]`` bool (``[., 0]`` when the stream has no mask). Outputs per
window: ``values [B, K, D]`` (the stream's dtype), ``valid [B, K]`` bool,
``age [B, K]`` float32.

Every (window, row b, entry k) is independent; a kernel can give one thread
(or warp, for wide D) to each and follow these steps, which are exactly what
the twin does per row:

1. Segment: ``e = episode[b]``; when ``0 <= e < E``, ``start = offsets[e]``,
   ``n = offsets[e + 1] - start`` (both clamped into ``[0, N]``; ``n`` also
   clamped to ``max_length``); otherwise ``n = 0``. Sample ``i`` of the
   episode is flat sample ``start + i``; every read is clamped into
   ``[0, N - 1]`` so no input reads out of bounds.
2. Time windows: ``q = anchor + deltas[k]`` (rounded in the time dtype), then
   ``q - offset`` (a second rounding, as align). From here it is align's
   per-stream code (``align_twin.stream_episode``) on the segment: resample's
   plan (``interp.plan_queries``: binary searches over ``[0, n)``, search
   depth ``ceil(log2(max_length + 1))``) and ``interp.combine`` at flat rows
   ``start + a`` / ``start + b``; age from the upper bound; window_mean over
   flat rows ``[start + lo, start + ub)``; tolerance; ``"zero"`` is planned as
   ``"clamp"`` and zeroes invalid entries at the end. A mask invalidates an
   entry whose rows (``a``; ``b`` when it is a two-sample plan; the whole
   window for window_mean) hold a masked sample.
3. Index windows: ``qa = anchor - offset``; ``ub`` = number of samples with
   ``t <= qa`` (the same upper-bound search); entry k reads
   ``i = ub - 1 + steps[k]`` clamped into ``[0, n - 1]``, valid when
   ``0 <= i < n`` and ``qa`` is not NaN (and the row is unmasked); age
   ``qa - t[i]``.
4. ``out_of_range``: ``"nan"`` sets every invalid entry to NaN, ``"zero"`` to 0.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._core.codes import WINDOW_KINDS, WINDOW_OUT_OF_RANGE
from ..streams import interp as _interp
from ..streams.align_twin import WINDOW_MEAN, _age, _distance, _window_means
from ..streams.interp import CLAMP, NAN_OOR, PREVIOUS, TWO

#: Window kinds (csrc/common/constants.h).
TIME, INDEX = WINDOW_KINDS["time"], WINDOW_KINDS["index"]
#: The out_of_range code of "zero" (after align's clamp / nan / extrapolate).
ZERO_OOR = WINDOW_OUT_OF_RANGE["zero"]


class WindowParams(NamedTuple):
    """Static description of one window (hashable: a primitive parameter)."""
    kind: int  # TIME or INDEX
    deltas: tuple  # seconds (floats) or steps (ints)
    method: int  # align's method code (TIME); -1 for INDEX
    offset: float
    tolerance: float | None
    window: float  # window_mean width, 0 otherwise
    out_of_range: int
    masked: bool  # the stream has a per-sample mask operand
    max_length: int | None  # 2**d - 1 >= the longest episode: d search steps (None: N)

    @property
    def size(self) -> int:
        return len(self.deltas)


class _Segment:
    """One episode's samples as an ``[L]`` array: ``seg[i]`` is ``flat[start + i]``.

    Exposes what ``interp.plan_queries`` / ``interp._search`` use (``shape``,
    ``dtype``, integer indexing), so resample's planning runs unchanged on a
    slice of the flat store. Reads are clamped into the flat array.
    """

    def __init__(self, flat, start, length: int):
        self.flat, self.start = flat, start
        self.shape = (length,)
        self.dtype = flat.dtype

    def __getitem__(self, i):
        return self.flat[jnp.clip(self.start + i, 0, self.flat.shape[0] - 1)]


def _segment(episode, offsets, N: int, L: int):
    """Step 1: (start, n) of the episode's samples in the flat arrays; n = 0 when absent."""
    E = offsets.shape[0] - 1
    present = (episode >= 0) & (episode < E)
    e = jnp.clip(episode, 0, max(E - 1, 0))
    start = jnp.clip(offsets[e], 0, N)
    stop = jnp.clip(offsets[jnp.minimum(e + 1, E)], start, N)
    n = jnp.where(present, jnp.minimum(stop - start, L), 0)
    return start.astype(jnp.int32), n.astype(jnp.int32)


def _invalid_fill(out, valid, out_of_range):
    """Step 4."""
    if out_of_range == NAN_OOR:
        return jnp.where(valid[:, None], out, jnp.asarray(jnp.nan, out.dtype))
    if out_of_range == ZERO_OOR:
        return jnp.where(valid[:, None], out, jnp.zeros((), out.dtype))
    return out


def _time_row(p: WindowParams, anchor, values, times, mask, start, n, L):
    """Step 2: one row of a time window -> (out [K, D], valid [K], age [K] float32)."""
    N = times.shape[0]
    tdt = times.dtype
    q = _interp.shifted(_interp.rounded(anchor) + jnp.asarray(p.deltas, tdt), p.offset)
    seg = _Segment(times, start, L)
    plan_method = PREVIOUS if p.method == WINDOW_MEAN else p.method
    plan_oor = CLAMP if p.out_of_range == ZERO_OOR else p.out_of_range
    plan = _interp.plan_queries(seg, n, q, method=plan_method, out_of_range=plan_oor)
    rows_a = jnp.clip(start + plan.a, 0, max(N - 1, 0))
    rows_b = jnp.clip(start + plan.b, 0, max(N - 1, 0))
    out = _interp.combine(values, plan._replace(a=rows_a, b=rows_b), method=plan_method)
    valid = plan.valid
    ub = _interp._search(seg, n, q, strict=False) if L else jnp.zeros(q.shape, jnp.int32)
    age = _age(seg, ub, q)
    lo = ub
    if p.method == WINDOW_MEAN and L:
        lo = _interp._search(seg, n, q - jnp.asarray(p.window, tdt), strict=False)
        nonempty = valid & (lo < ub)
        mean = _window_means(values, jnp.where(nonempty, start + lo, 0),
                             jnp.where(nonempty, start + ub, 0))
        out = jnp.where(nonempty[:, None], mean.astype(values.dtype), out)
        valid = nonempty
    elif p.method == WINDOW_MEAN:
        valid = jnp.zeros_like(valid)
    if p.tolerance is not None and L:
        dist = _distance(seg, plan, q, ub, p.method)
        valid = valid & ~(dist > jnp.asarray(p.tolerance, tdt))
    if p.masked and N:
        if p.method == WINDOW_MEAN:
            masked_before = jnp.concatenate([jnp.zeros((1,), jnp.int32),
                                             jnp.cumsum(~mask, dtype=jnp.int32)])
            hits = masked_before[start + ub] - masked_before[start + lo]
            valid = valid & (hits == 0)
        else:
            valid = valid & mask[rows_a] & ((plan.kind != TWO) | mask[rows_b])
    out = _invalid_fill(out, valid, p.out_of_range)
    return out, valid, age.astype(jnp.float32)


def _index_row(p: WindowParams, anchor, values, times, mask, start, n, L):
    """Step 3: one row of an index window -> (out [K, D], valid [K], age [K] float32)."""
    N, D = values.shape
    tdt = times.dtype
    qa = _interp.shifted(anchor, p.offset)
    seg = _Segment(times, start, L)
    ub = _interp._search(seg, n, qa[None], strict=False)[0] if L else jnp.zeros((), jnp.int32)
    index = (ub - 1) + jnp.asarray(p.deltas, jnp.int32)
    nan_anchor = jnp.isnan(qa)
    valid = (index >= 0) & (index < n) & ~nan_anchor
    rows = jnp.clip(start + jnp.clip(index, 0, jnp.maximum(n - 1, 0)), 0, max(N - 1, 0))
    if N:
        out = values[rows]
        age = jnp.where(n > 0, qa - times[rows], jnp.inf)
        if p.masked:
            valid = valid & mask[rows]
    else:
        out = jnp.zeros((len(p.deltas), D), values.dtype)
        age = jnp.full((len(p.deltas),), jnp.inf, tdt)
    out = jnp.where(n > 0, out, jnp.zeros((), out.dtype))
    out = jnp.where(nan_anchor, jnp.asarray(jnp.nan, out.dtype), out)
    age = jnp.where(nan_anchor, jnp.nan, age)
    out = _invalid_fill(out, valid, p.out_of_range)
    return out, valid, age.astype(jnp.float32)


def _window(p: WindowParams, episode, anchor, values, times, offsets, mask):
    """One window over the batch: vmaps the row function over the batch axis of every
    operand that has one (store operands of leading size 1 are shared)."""
    B = episode.shape[0]
    N = times.shape[1]
    L = N if p.max_length is None else min(int(p.max_length), N)
    row = _time_row if p.kind == TIME else _index_row

    def one(e, a, v, t, o, m):
        start, n = _segment(e, o, N, L)
        return row(p, a, v, t, m, start, n, L)

    store = (values, times, offsets, mask)
    axes = tuple(0 if x.shape[0] == B and B != 1 else None for x in store)
    store = [x if ax == 0 else x[0] for x, ax in zip(store, axes)]
    return jax.vmap(one, in_axes=(0, 0) + axes)(episode, anchor, *store)


def sample_windows_twin(episode, anchor, *operands, windows):
    """episode [B], anchor [B], per window (values, times, offsets, mask) -> per window
    (values [B, K, D], valid [B, K], age [B, K]), flattened."""
    outs = []
    for k, p in enumerate(windows):
        outs += _window(p, episode, anchor, *operands[4 * k:4 * k + 4])
    return tuple(outs)


__all__ = ["INDEX", "TIME", "WindowParams", "ZERO_OOR", "sample_windows_twin"]
