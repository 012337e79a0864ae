"""``align``: many sensor streams onto one clock, in one primitive (one CUDA launch).

Contract (README "Semantics of align" has the full table):

* ``streams``: a non-empty mapping name -> ``Stream`` (at most ``MAX_STREAMS``).
  Each stream has ``values [..., S_k, D_k]`` (float32 / bfloat16 / float16,
  float64 with x64), ``times [..., S_k]`` sorted within its ``lengths [...]``
  (default S_k), and static ``method``, ``offset``, ``tolerance``, ``window``.
  Streams may differ in S, D and value dtype; all times and ``query_times``
  share one dtype (float32, float64 with x64). ``query_times [..., T]`` or a
  plain ``[T]``. Leading dims of every array broadcast (NumPy rules).
* Per stream the result holds ``values [..., T, D_k]`` (dtype of the stream's
  values), ``valid [..., T]`` bool and ``age [..., T]`` float32.
* ``offset``: the stream's sample times are ``times + offset``; computed as
  evaluating the stream at ``q - offset`` (one rounding of the query in the
  time dtype, sample spacing untouched), so ``align`` equals ``resample`` at
  ``query_times - offset`` bit for bit.
* Methods ``linear``, ``nearest``, ``previous``, ``slerp`` are exactly
  ``resample``'s (values and valid, every ``out_of_range`` policy) before
  ``tolerance``. ``window_mean`` (``window=w`` seconds): the mean of the
  samples with ``q - w < t <= q`` (``q - w`` rounded in the time dtype) for
  queries inside [t_0, t_{n-1}]; an empty window, or a query outside the
  range, is invalid and takes ``previous``'s value (the out_of_range policy
  outside the range).
* ``tolerance`` (seconds): a valid query becomes invalid when the samples used
  are too far: ``previous`` q - t_i > tol, ``nearest`` |q - t_j| > tol,
  ``linear``/``slerp`` the bracketing gap t_{i+1} - t_i > tol (a query
  exactly on a sample uses that sample alone: gap 0), ``window_mean``
  q - t_i > tol (t_i the latest sample, as for ``previous``). Distances are
  computed in the time dtype.
* Invalid entries: under ``out_of_range="nan"`` every invalid entry is NaN (so
  ``valid == ~isnan`` barring NaN samples); under ``"clamp"``/``"extrapolate"``
  they hold the value their method gives (edge samples outside the range,
  the interpolation across a too-large gap, the previous sample for an empty
  window), flagged by ``valid``.
* ``age``: q - t_i with t_i the latest (shifted) sample at or before q, computed
  in the time dtype then cast to float32; +inf when there is none (q before
  the first sample, or no samples); NaN for a NaN query. It ignores
  ``out_of_range``, ``tolerance`` and ``window``.
* Empty streams (n == 0 or S == 0) give zeros (NaN under ``"nan"``), invalid,
  age +inf; a NaN query gives NaN values, invalid, age NaN; ``lengths`` are
  clamped into [0, S]; samples past them are never read.
* Result: ``AlignResult`` keyed by stream name (sorted: the order JAX gives
  dict keys); ``concatenated()`` in the promoted dtype. With ``concatenate``
  the kernel writes the concatenated rows itself (values rounded to their
  stream's dtype first: equal to concatenating the per-stream outputs).
* One primitive; on CUDA one kernel launch for every stream (at most
  ``MAX_STREAMS``; csrc/streams/align_kernels.cu), elsewhere the jnp twin (align_twin.py).
  ``window_mean`` sums are sequential per window in the kernel and from a
  segment tree in the twin: equal to float rounding, not bitwise.
* Gradients: with respect to every stream's ``values``, and ``query_times``
  (and ``times``) through ``linear``/``slerp`` streams and ``age``; from the
  jnp twin's JVP (forward and reverse mode).
"""

from __future__ import annotations

import math
from typing import Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .align_twin import WINDOW_MEAN, align_twin
from .._core.codes import MAX_STREAMS
from .._core.contract import (METHODS, OUT_OF_RANGE, TIME_DTYPES, VALUE_DTYPES, broadcast_leading,
                        check_choice, check_dtype, check_min_rank, to_canonical, valid_lengths)
from .._core.primitive import FfiOp
from ..jax_compat import ShapedArray, x64_enabled
from .stream import Stream
from .timestamps import is_host_wide_timestamps, relative_timestamps

__all__ = ["AlignResult", "MAX_STREAMS", "StreamAlignment", "align", "fuse_multimodal"]

#: Method names and codes of align (resample's four and window_mean).
ALIGN_METHODS = {**METHODS, "window_mean": WINDOW_MEAN}


# -- the primitive -------------------------------------------------------------
def _align_abstract_eval(queries, *operands, methods, offsets, tolerances, windows,
                         out_of_range, columns=None, concat_dtype=None):
    B, T = operands[0].shape[0], queries.shape[1]
    mask = (ShapedArray((B, T), jnp.bool_), ShapedArray((B, T), jnp.float32))
    if columns is not None:
        width = sum(operands[3 * k].shape[2] for k in range(len(methods)))
        return (ShapedArray((B, T, width), jnp.dtype(concat_dtype)),) + mask * len(methods)
    avals = []
    for k in range(len(methods)):
        values = operands[3 * k]
        avals += [ShapedArray((B, T, values.shape[2]), values.dtype), *mask]
    return tuple(avals)


def _ffi_attrs(methods, offsets, tolerances, windows, out_of_range, columns=None,
               concat_dtype=None):
    return dict(methods=np.asarray(methods, np.int32), offsets=np.asarray(offsets, np.float64),
                tolerances=np.asarray(tolerances, np.float64),
                windows=np.asarray(windows, np.float64),
                columns=np.asarray(columns or (0,) * len(methods), np.int64),
                out_of_range=np.int32(out_of_range), concatenated=np.int32(columns is not None))


_align_op = FfiOp("align", twin=align_twin, abstract_eval=_align_abstract_eval,
                  ffi_target="robocache_align", ffi_attrs=_ffi_attrs)


# -- the result pytree ---------------------------------------------------------
class StreamAlignment(NamedTuple):
    """One stream on the query clock."""
    values: jax.Array  # [..., T, D_k], dtype of the stream's values
    valid: jax.Array  # [..., T] bool
    age: jax.Array  # [..., T] float32 seconds since the latest sample (+inf: none)


@jax.tree_util.register_pytree_node_class
class AlignResult:
    """``align``'s result: per stream ``values``, ``valid`` and ``age``, keyed by name.

    ``result["imu"]`` is a ``StreamAlignment``; ``result.values`` /
    ``result.valid`` / ``result.age`` are dicts keyed by stream name;
    ``result.names`` lists the streams in sorted order, the default order of
    ``concatenated()`` and the order of the pytree leaves (the order in which
    JAX flattens dicts, so it survives ``jit`` and ``tree_map``).

    A result of ``align(..., concatenate=order)`` also holds the concatenated
    rows as the kernel wrote them (``concat_order`` names their order); its
    per-stream ``values`` are slices of that buffer in the streams' dtypes.
    """

    def __init__(self, names: Sequence[str], values: Sequence, valid: Sequence, age: Sequence,
                 concat=None, concat_order: Sequence[str] | None = None):
        self.names = tuple(names)
        self.values = dict(zip(self.names, values))
        self.valid = dict(zip(self.names, valid))
        self.age = dict(zip(self.names, age))
        self.concat = concat
        self.concat_order = None if concat_order is None else tuple(concat_order)

    def __getitem__(self, name: str) -> StreamAlignment:
        return StreamAlignment(self.values[name], self.valid[name], self.age[name])

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n}: {getattr(self.values[n], 'shape', '?')}" for n in self.names)
        return f"AlignResult({shapes})"

    def concatenated(self, order: Sequence[str] | None = None):
        """``[..., T, sum D_k]``: the streams' values side by side.

        Args:
          order: stream names in the order to concatenate (default: the
            ``concatenate`` order given to ``align``, else sorted names); a
            subset is allowed.

        The dtype is the JAX promotion of the streams' dtypes (bfloat16 and
        float32 give float32: exact, no precision is lost). When ``order`` is
        the order given to ``align(..., concatenate=...)`` the kernel's buffer
        is returned as is; otherwise the streams are concatenated by XLA.
        """
        if order is None:
            order = self.concat_order or self.names
        order = tuple(order)
        unknown = [n for n in order if n not in self.values]
        if unknown:
            raise ValueError(f"order names unknown streams {unknown}; streams: {self.names}")
        if not order:
            raise ValueError("order must name at least one stream")
        if self.concat is not None and order == self.concat_order:
            return self.concat
        dtype = jnp.result_type(*(self.values[n].dtype for n in order))
        return jnp.concatenate([self.values[n].astype(dtype) for n in order], axis=-1)

    def all_valid(self, order: Sequence[str] | None = None):
        """``[..., T]`` bool: valid for every stream (of ``order``, default all)."""
        order = self.names if order is None else tuple(order)
        return jnp.stack([self.valid[n] for n in order], axis=0).all(axis=0)

    def tree_flatten(self):
        return ((tuple(self.values[n] for n in self.names),
                 tuple(self.valid[n] for n in self.names),
                 tuple(self.age[n] for n in self.names), self.concat),
                (self.names, self.concat_order))

    @classmethod
    def tree_unflatten(cls, aux, children):
        names, concat_order = aux
        return cls(names, *children, concat_order=concat_order)


# -- argument checks (trace time) -------------------------------------------------
def _static_float(label: str, x, *, allow_none: bool) -> float | None:
    if x is None:
        if allow_none:
            return None
        raise ValueError(f"{label} is required")
    if isinstance(x, jax.core.Tracer):
        raise TypeError(f"{label} must be a static Python float (it is part of the stream's "
                        f"static metadata), got a traced {type(x).__name__}")
    try:
        return float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{label} must be a float, got {x!r}") from None


class _Spec(NamedTuple):
    method: int
    offset: float
    tolerance: float  # +inf: none
    window: float  # 0: none


def _check_stream(name: str, stream, out_of_range: str) -> _Spec:
    label = f"streams[{name!r}]"
    if not isinstance(stream, Stream):
        raise TypeError(f"{label} must be a jax_robocache.Stream, got {type(stream).__name__}")
    check_choice(f"{label}.method", stream.method, ALIGN_METHODS)
    if out_of_range == "extrapolate" and stream.method != "linear":
        raise ValueError(f"out_of_range='extrapolate' needs method='linear' for every stream; "
                         f"{label} has method={stream.method!r}")
    offset = _static_float(f"{label}.offset", stream.offset, allow_none=False)
    if not math.isfinite(offset):
        raise ValueError(f"{label}.offset must be finite, got {offset}")
    tolerance = _static_float(f"{label}.tolerance", stream.tolerance, allow_none=True)
    if tolerance is not None and not tolerance >= 0:
        raise ValueError(f"{label}.tolerance must be >= 0 (or None), got {tolerance}")
    window = _static_float(f"{label}.window", stream.window, allow_none=True)
    if stream.method == "window_mean":
        if window is None:
            raise ValueError(f"{label} has method='window_mean' but no window: pass "
                             "Stream(..., window=seconds)")
        if not window > 0:
            raise ValueError(f"{label}.window must be > 0, got {window}")
    elif window is not None:
        raise ValueError(f"{label}.window is only used by method='window_mean', got "
                         f"method={stream.method!r}")
    return _Spec(ALIGN_METHODS[stream.method], offset,
                 float("inf") if tolerance is None else tolerance, window or 0.0)


def _check_streams(streams) -> tuple[str, ...]:
    if not isinstance(streams, Mapping):
        raise TypeError(f"streams must be a mapping name -> Stream, got {type(streams).__name__}")
    if not streams:
        raise ValueError("streams must name at least one Stream, got an empty mapping")
    bad = [k for k in streams if not isinstance(k, str)]
    if bad:
        raise TypeError(f"stream names must be strings, got {bad}")
    if len(streams) > MAX_STREAMS:
        raise ValueError(f"align takes at most {MAX_STREAMS} streams per call, got "
                         f"{len(streams)}; split them over several calls")
    return tuple(sorted(streams))


def _host_times(names, streams, query_times):
    """Host float64/int64 timestamps of all streams and the query -> relative seconds."""
    labels = [f"streams[{n!r}].times" for n in names] + ["query_times"]
    all_times = [streams[n].times for n in names] + [query_times]
    wide = [is_host_wide_timestamps(t) for t in all_times]
    if not any(wide):
        return all_times[:-1], query_times
    if not all(wide):
        desc = ", ".join(f"{lab} {type(t).__name__} {getattr(t, 'dtype', '')}"
                         for lab, t in zip(labels, all_times))
        raise TypeError("when any stream's times or query_times hold host float64/int64 "
                        "timestamps, all of them must (they are converted together to "
                        f"episode-relative seconds); got {desc}. Use "
                        "jax_robocache.relative_timestamps before jit.")
    all_times = [np.asarray(t) for t in all_times]
    if x64_enabled() and all(t.dtype == np.float64 for t in all_times):
        return [jnp.asarray(t) for t in all_times[:-1]], jnp.asarray(all_times[-1])
    lengths = [streams[n].lengths if isinstance(streams[n].lengths, np.ndarray) else None
               for n in names] + [None]
    try:
        *rel, _ = relative_timestamps(*all_times, lengths=lengths)
    except ValueError as err:
        order = ", ".join(f"timestamps[{k}] = {lab}" for k, lab in enumerate(labels))
        raise ValueError(f"{err} ({order})") from None
    return rel[:-1], rel[-1]


def _stream_arrays(name, stream, times):
    label = f"streams[{name!r}]"
    values, times = jnp.asarray(stream.values), jnp.asarray(times)
    check_min_rank(f"{label}.values", values, 2, "[..., S, D]")
    check_min_rank(f"{label}.times", times, 1, "[..., S]")
    check_dtype(f"{label}.values", values, VALUE_DTYPES)
    hint = ("; integer timestamps must be numpy int64 nanoseconds (converted on the host) or go "
            "through jax_robocache.relative_timestamps")
    check_dtype(f"{label}.times", times, TIME_DTYPES,
                hint if jnp.issubdtype(times.dtype, jnp.integer) else "")
    S, D = values.shape[-2:]
    if times.shape[-1] != S:
        raise ValueError(f"{label}.times {tuple(times.shape)} must end in S={S}, the sample "
                         f"axis of {label}.values {tuple(values.shape)}")
    if stream.method == "slerp" and D != 4:
        raise ValueError(f"{label} has method='slerp', which needs quaternion values "
                         f"[..., S, 4] (x, y, z, w), got values {tuple(values.shape)}")
    lengths = valid_lengths(stream.lengths, S, f"{label}.lengths")
    return values, times, lengths


# -- the public functions ----------------------------------------------------------
def align(streams: Mapping[str, Stream], query_times, *, out_of_range: str = "clamp",
          concatenate: bool | Sequence[str] = False) -> AlignResult:
    """Evaluates several streams on one clock (one primitive; one CUDA launch on GPUs).

    Args:
      streams: mapping name -> ``Stream`` (1 to ``MAX_STREAMS`` = 16 streams).
      query_times: ``[..., T]`` or ``[T]`` timestamps, any order, in the dtype
        of the streams' times (or host float64/int64 epoch timestamps when
        every stream's times are too: all are converted together to seconds
        relative to one origin per episode).
      out_of_range: ``"clamp"``, ``"nan"`` or ``"extrapolate"`` (linear
        streams only), for queries outside a stream's [t_0, t_{n-1}], as in
        ``resample``; under ``"nan"`` every invalid entry is NaN.
      concatenate: ``True`` (sorted names) or a sequence naming every stream
        once: the kernel writes the concatenated rows ``[..., T, sum D_k]``
        in that order directly (no extra pass over the output), returned by
        ``result.concatenated()``; per-stream values are then slices of it.

    Returns:
      ``AlignResult``: per stream ``values [..., T, D_k]``, ``valid [..., T]``
      and ``age [..., T]`` float32, and ``concatenated()`` ``[..., T, sum D_k]``
      (default order: the ``concatenate`` order, else sorted stream names).
      See the module docstring for the semantics.
    """
    names = _check_streams(streams)
    check_choice("out_of_range", out_of_range, OUT_OF_RANGE)
    concat_order = _check_concatenate(concatenate, names)
    specs = [_check_stream(n, streams[n], out_of_range) for n in names]
    times_list, query_times = _host_times(names, streams, query_times)
    arrays = [_stream_arrays(n, streams[n], t) for n, t in zip(names, times_list)]
    query_times = jnp.asarray(query_times)
    check_min_rank("query_times", query_times, 1, "[..., T]")
    check_dtype("query_times", query_times, TIME_DTYPES)
    for name, (_, times, _) in zip(names, arrays):
        if times.dtype != query_times.dtype:
            raise TypeError(f"streams[{name!r}].times and query_times must share a dtype, got "
                            f"{times.dtype.name} and {query_times.dtype.name}")

    leading = {"query_times": query_times.shape[:-1]}
    for name, (values, times, lengths) in zip(names, arrays):
        leading[f"streams[{name!r}].values"] = values.shape[:-2]
        leading[f"streams[{name!r}].times"] = times.shape[:-1]
        leading[f"streams[{name!r}].lengths"] = lengths.shape
    lead = tuple(broadcast_leading(leading))
    B, T = math.prod(lead), query_times.shape[-1]

    operands = [to_canonical(query_times, lead, query_times.ndim - 1)]
    for values, times, lengths in arrays:
        values = to_canonical(values, lead, values.ndim - 2)
        if values.shape[0] != B:  # the kernel reads values per episode: no sharing
            values = jnp.broadcast_to(values, (B,) + values.shape[1:])
        operands += [values, to_canonical(times, lead, times.ndim - 1),
                     to_canonical(lengths, lead, lengths.ndim)]
    params = dict(methods=tuple(s.method for s in specs), offsets=tuple(s.offset for s in specs),
                  tolerances=tuple(s.tolerance for s in specs),
                  windows=tuple(s.window for s in specs), out_of_range=OUT_OF_RANGE[out_of_range])
    dtypes = [values.dtype for values, _, _ in arrays]
    widths = [values.shape[-1] for values, _, _ in arrays]
    K = len(names)
    concat = None
    if concat_order is not None and _kernel_concatenates(dtypes):
        columns, start = [0] * K, 0
        for name in concat_order:
            k = names.index(name)
            columns[k], start = start, start + widths[k]
        dtype = jnp.result_type(*dtypes)
        outs = _align_op.bind(*operands, columns=tuple(columns), concat_dtype=dtype.name, **params)
        concat = outs[0].reshape(lead + (T, start))
        values = [concat[..., c:c + w].astype(d) for c, w, d in zip(columns, widths, dtypes)]
        valid, age = outs[1::2], outs[2::2]
    else:
        outs = _align_op.bind(*operands, **params)
        values = [outs[3 * k].reshape(lead + (T, widths[k])) for k in range(K)]
        valid, age = outs[1::3], outs[2::3]
        if concat_order is not None:
            dtype = jnp.result_type(*dtypes)
            concat = jnp.concatenate([values[names.index(n)].astype(dtype) for n in concat_order],
                                     axis=-1)
    valid = [v.reshape(lead + (T,)) for v in valid]
    age = [a.reshape(lead + (T,)) for a in age]
    return AlignResult(names, values, valid, age, concat, concat_order)


def _check_concatenate(concatenate, names) -> tuple[str, ...] | None:
    if concatenate is False or concatenate is None:
        return None
    if concatenate is True:
        return names
    if isinstance(concatenate, str):
        raise TypeError(f"concatenate must be a bool or a sequence of stream names, got "
                        f"{concatenate!r}")
    order = tuple(concatenate)
    if sorted(order) != list(names):
        raise ValueError(f"concatenate must name every stream exactly once, got {order}; "
                         f"streams: {names}")
    return order


def _kernel_concatenates(dtypes) -> bool:
    """Whether the kernel writes this concatenation: each dtype is the promoted one, or a
    16-bit dtype promoted to float32 (float64 mixes go through an XLA concatenation)."""
    out = jnp.result_type(*dtypes)
    return all(d == out or (out == jnp.float32 and d in (jnp.bfloat16, jnp.float16))
               for d in map(jnp.dtype, dtypes))


#: Concatenation order of ``fuse_multimodal`` (its argument order).
FUSE_ORDER = ("vision", "proprio", "force")


def fuse_multimodal(vision, vision_times, proprio, proprio_times, force, force_times,
                    target_times, *, out_of_range: str = "clamp"):
    """Three streams, linearly interpolated onto ``target_times`` and concatenated.

    ``align({"vision": ..., "proprio": ..., "force": ...}, target_times)`` with
    ``method="linear"`` for all three, concatenated in argument order (vision,
    proprio, force) by the kernel itself: ``[..., T, D_vision + D_proprio +
    D_force]`` in the promoted dtype of the three (e.g. bfloat16 vision +
    float32 -> float32; each value is rounded to its stream's dtype first, so
    the result equals concatenating the per-stream outputs).
    """
    streams = {"vision": Stream(vision, vision_times), "proprio": Stream(proprio, proprio_times),
               "force": Stream(force, force_times)}
    return align(streams, target_times, out_of_range=out_of_range,
                 concatenate=FUSE_ORDER).concatenated()


def backend(platform: str | None = None) -> str:
    """What ``align`` lowers to on ``platform``: ``"cuda-ffi"`` or ``"jnp"``."""
    return _align_op.backend(platform)
