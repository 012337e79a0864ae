"""``align``: many sensor streams onto one clock, in one primitive (one CUDA launch).

The contract (methods, offset, tolerance, window means, age, the result type, errors) is
docs/ops/align.md; the public functions' docstrings summarise it. This module holds the
argument checks, the abstract evaluation, the result pytree, the public functions and the
``FfiOp`` registration (CUDA target ``robocache_align``: csrc/streams/align.cc); the jnp twin
is ``align_twin``.
"""

from __future__ import annotations

import math
from typing import Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._core.checks import requires_checkify
from .._core.codes import ALIGN_KERNEL_WRITES, MAX_STREAMS
from .._core.contract import (METHODS, OUT_OF_RANGE, TIME_DTYPES, VALUE_DTYPES, broadcast_leading,
                              check_choice, check_dtype, check_min_rank, check_same_host_dtype,
                              as_jax, check_lengths, check_sample_axis, feature_axis_hint,
                              to_canonical, valid_lengths)
from .._core.eager import is_traced, staged
from .._core.primitive import FfiOp
from ..jax_compat import ShapedArray, x64_enabled
from .align_twin import WINDOW_MEAN, align_twin
from .stream import Stream
from .timestamps import is_host_wide_timestamps, relative_timestamps
from .validate import check_times, guard_resolution, raise_if_unresolved, resolved_lengths

__all__ = ["AlignResult", "MAX_STREAMS", "StreamAlignment", "align", "fuse_multimodal"]

#: Method names and codes of align (resample's four and window_mean).
ALIGN_METHODS = {**METHODS, "window_mean": WINDOW_MEAN}


# -- abstract evaluation (canonical operands) -------------------------------
def _align_abstract_eval(queries, *operands, methods, offsets, tolerances, windows,
                         out_of_range, columns=None, concat_dtype=None, out_dtype=None):
    B, T = operands[0].shape[0], queries.shape[1]
    mask = (ShapedArray((B, T), jnp.bool_), ShapedArray((B, T), jnp.float32))
    if columns is not None:
        width = sum(operands[3 * k].shape[2] for k in range(len(methods)))
        return (ShapedArray((B, T, width), jnp.dtype(concat_dtype)),) + mask * len(methods)
    avals = []
    for k in range(len(methods)):
        values = operands[3 * k]
        dtype = values.dtype if out_dtype is None else jnp.dtype(out_dtype)
        avals += [ShapedArray((B, T, values.shape[2]), dtype), *mask]
    return tuple(avals)


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
        check_same_host_dtype(list(zip(labels, all_times)))
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


def _stream_arrays(name, stream, given_times):
    """values, times and lengths (as given, dtype-checked) of one stream."""
    label = f"streams[{name!r}]"
    values, times = as_jax(stream.values), as_jax(given_times)
    check_min_rank(f"{label}.values", values, 2, "[..., S, D]",
                   feature_axis_hint(f"{label}.values", values))
    check_min_rank(f"{label}.times", times, 1, "[..., S]")
    check_dtype(f"{label}.values", values, VALUE_DTYPES)
    hint = ("; integer timestamps must be numpy int64 nanoseconds (converted on the host) or go "
            "through jax_robocache.relative_timestamps")
    check_dtype(f"{label}.times", times, TIME_DTYPES,
                hint if jnp.issubdtype(times.dtype, jnp.integer) else "")
    check_sample_axis(f"{label}.values", values, f"{label}.times", times)
    S, D = values.shape[-2:]
    if stream.method == "slerp" and D != 4:
        raise ValueError(f"{label} has method='slerp', which needs quaternion values "
                         f"[..., S, 4] (x, y, z, w), got values {tuple(values.shape)}")
    return values, times, check_lengths(stream.lengths, f"{label}.lengths")


# -- the public functions ----------------------------------------------------------
def align(streams: Mapping[str, Stream], query_times, *, out_of_range: str = "clamp",
          concatenate: bool | Sequence[str] = False, validate: bool = False,
          out_dtype=None) -> AlignResult:
    """Evaluates several sensor streams on one clock (one primitive; one CUDA launch on GPUs).

    ``align({"cam": Stream(...), "joints": Stream(...)}, query_times)`` ->
    ``AlignResult``. Full contract: docs/ops/align.md.

    Args:
      streams: mapping name -> ``Stream(values [..., S_k, D_k], times [..., S_k],
        lengths=None, method=..., offset=..., tolerance=..., window=...)``, 1 to
        16 streams (``MAX_STREAMS``). Per stream: ``method`` ``"linear"``,
        ``"nearest"``, ``"previous"``, ``"slerp"`` (exactly ``resample`` at
        ``q - offset``) or ``"window_mean"`` (mean of the samples with
        ``q - window < t <= q``; an empty window is invalid); ``offset`` seconds
        added to the stream's times (latency); ``tolerance`` seconds: a query is
        invalid when the samples it uses are farther away (``previous``:
        q - t_i, ``nearest``: abs(q - t_j), ``linear``/``slerp``: the bracketing
        gap, ``window_mean``: q - t_i).
      query_times: ``[..., T]`` or ``[T]`` timestamps, any order, in the dtype
        shared by every stream's times (float32, float64 with x64). Host numpy
        float64 / int64 epoch stamps are accepted when every stream's times are
        such stamps too: all are converted together to seconds relative to one
        origin per episode (before ``jit``: ``jax_robocache.relative_timestamps``).
      out_of_range: ``"clamp"`` (default), ``"nan"`` or ``"extrapolate"`` (linear
        streams only) for queries outside a stream's [t_0, t_{n-1}], as in
        ``resample``; under ``"nan"`` every invalid entry is NaN.
      concatenate: ``True`` (sorted names) or a sequence naming every stream
        once: the kernel writes the rows ``[..., T, sum D_k]`` in that order
        itself, returned by ``result.concatenated()``.
      out_dtype: None (each stream's values in its own dtype, the concatenation in
        their promotion) or one float dtype (float32, bfloat16, float16; float64 with
        x64) for every values output and the concatenation: each stream's result,
        computed as without it, rounded once to ``out_dtype``.
      validate: check every stream's times and lengths as ``resample`` does
        (lengths within [0, S], valid times finite, non-decreasing and
        resolved): eagerly it raises; under ``jit`` wrap the function in
        ``jax.experimental.checkify.checkify``.

    Returns:
      ``AlignResult``: ``result[name]`` is ``(values [..., T, D_k] in the stream's
      dtype, valid [..., T] bool, age [..., T] float32)``, ``age`` = seconds since
      the latest sample at or before q (+inf: none); ``result.names`` sorted;
      ``result.concatenated()`` ``[..., T, sum D_k]`` in the promoted dtype;
      ``result.all_valid()``.

    Errors name the stream and argument, at trace time. Gradients w.r.t. every
    stream's values, and query/sample times through linear/slerp streams and age,
    from the jnp twin's JVP. Works under ``jit``, ``vmap``, ``lax.scan`` and batch
    sharding.
    """
    names = _check_streams(streams)
    check_choice("out_of_range", out_of_range, OUT_OF_RANGE)
    out_dtype = _check_out_dtype(out_dtype)
    concat_order = _check_concatenate(concatenate, names)
    specs = [_check_stream(n, streams[n], out_of_range) for n in names]
    times_list, query_times = _host_times(names, streams, query_times)
    arrays = [_stream_arrays(n, streams[n], t) for n, t in zip(names, times_list)]
    query_times = as_jax(query_times)
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
        leading[f"streams[{name!r}].lengths"] = np.shape(lengths)
    lead = tuple(broadcast_leading(leading))

    options = dict(lead=lead, names=tuple(names), concat_order=concat_order,
                   methods=tuple(s.method for s in specs), offsets=tuple(s.offset for s in specs),
                   tolerances=tuple(s.tolerance for s in specs),
                   windows=tuple(s.window for s in specs),
                   out_of_range=OUT_OF_RANGE[out_of_range],
                   out_dtype=None if out_dtype is None else out_dtype.name)
    if not validate and not is_traced((query_times, arrays)):
        # An eager call: the resolution masks in the same program, their errors after it.
        (values, valid, age, concat), unresolved, flagged = staged(
            _align_resolved, query_times, tuple(arrays), **options)
        # one transfer of K flags; a stream's mask is read only when its flag is set
        if isinstance(flagged, jax.core.Tracer) or np.asarray(flagged).any():
            for name, given, (_, times, lengths), bad in zip(names, times_list, arrays,
                                                             unresolved):
                raise_if_unresolved("align", f"streams[{name!r}].times", given, lengths,
                                    times.shape[-1], bad, f"streams[{name!r}].lengths")
    else:
        arrays = _guarded_streams(names, arrays, times_list, validate)
        values, valid, age, concat = staged(_align_arrays, query_times, arrays, **options)
    return AlignResult(names, list(values), list(valid), list(age), concat, concat_order)


def _check_out_dtype(out_dtype):
    """``out_dtype`` as a jnp dtype among the value dtypes (None stays None)."""
    if out_dtype is None:
        return None
    try:
        dtype = jnp.dtype(out_dtype)
    except TypeError:
        raise TypeError(f"out_dtype must be a float dtype (float32, bfloat16, float16, float64 "
                        f"with x64) or None, got {out_dtype!r}") from None
    allowed = [jnp.dtype(d) for d in VALUE_DTYPES if jnp.dtype(d) != jnp.float64 or x64_enabled()]
    if dtype not in allowed:
        hint = "; float64 needs jax_enable_x64" if dtype == jnp.float64 else ""
        raise TypeError(f"out_dtype must be one of {[d.name for d in allowed]} or None, got "
                        f"{dtype.name}{hint}")
    return dtype


def _align_resolved(query_times, arrays, **options):
    """One program of an eager call: every stream's lengths and resolution mask, then the
    array work; returns (outputs, unresolved masks, [K] bool: any unresolved per stream) for
    the eager error."""
    resolved = [(v, t) + resolved_lengths(t, n, t.shape[-1]) for v, t, n in arrays]
    outputs = _align_arrays(query_times, tuple((v, t, n) for v, t, n, _ in resolved), **options)
    masks = tuple(bad for *_, bad in resolved)
    return outputs, masks, jnp.stack([jnp.any(bad) for bad in masks])


def _align_arrays(query_times, arrays, *, lead, names, concat_order, out_dtype, **params):
    """The array work of a checked call: canonical operands, the bind, the outputs' shapes.
    (values, valid, age) per stream and the concatenation (or None), values in ``out_dtype``
    (a dtype name) when given."""
    B, T = math.prod(lead), query_times.shape[-1]
    operands = [to_canonical(query_times, lead, query_times.ndim - 1)]
    for values, times, lengths in arrays:
        values = to_canonical(values, lead, values.ndim - 2)
        if values.shape[0] != B:  # the kernel reads values per episode: no sharing
            values = jnp.broadcast_to(values, (B,) + values.shape[1:])
        operands += [values, to_canonical(times, lead, times.ndim - 1),
                     to_canonical(lengths, lead, lengths.ndim)]
    dtypes = [values.dtype for values, _, _ in arrays]
    widths = [values.shape[-1] for values, _, _ in arrays]
    K = len(names)
    # The kernel rounds to out_dtype itself where that is one rounding of each stream's
    # result; otherwise (float64 streams into a 16-bit out_dtype) XLA converts afterwards.
    written = out_dtype if out_dtype and all(_kernel_writes(d, out_dtype) for d in dtypes) else None
    out_types = [jnp.dtype(written or d) for d in dtypes]  # the kernel's values outputs
    concat = None
    if concat_order is not None and (written or _kernel_concatenates(dtypes)):
        columns, start = [0] * K, 0
        for name in concat_order:
            k = names.index(name)
            columns[k], start = start, start + widths[k]
        dtype = jnp.dtype(written) if written else jnp.result_type(*dtypes)
        outs = _align_op.bind(*operands, columns=tuple(columns), concat_dtype=dtype.name,
                              out_dtype=written, **params)
        concat = outs[0].reshape(lead + (T, start))
        values = [concat[..., c:c + w].astype(d) for c, w, d in zip(columns, widths, out_types)]
        valid, age = outs[1::2], outs[2::2]
    else:
        outs = _align_op.bind(*operands, out_dtype=written, **params)
        values = [outs[3 * k].reshape(lead + (T, widths[k])) for k in range(K)]
        valid, age = outs[1::3], outs[2::3]
        if concat_order is not None:
            dtype = jnp.result_type(*out_types)
            concat = jnp.concatenate([values[names.index(n)].astype(dtype) for n in concat_order],
                                     axis=-1)
    if out_dtype and not written:  # one rounding of each stream's result, by XLA
        values = [v.astype(out_dtype) for v in values]
        concat = None if concat is None else concat.astype(out_dtype)
    valid = [v.reshape(lead + (T,)) for v in valid]
    age = [a.reshape(lead + (T,)) for a in age]
    return tuple(values), tuple(valid), tuple(age), concat


def _guarded_streams(names, arrays, given_times, validate):
    """Traced or ``validate=True`` calls: per stream the resolution guard (known times raise)
    and, with ``validate``, the checkify checks of its times and lengths (as given); returns
    (values, times, clamped lengths) per stream."""
    guarded = []
    for k, (name, (values, times, raw), given) in enumerate(zip(names, arrays, given_times)):
        label = f"streams[{name!r}]"
        with jax.ensure_compile_time_eval():  # known lengths stay known (the guard needs them)
            lengths = valid_lengths(raw, times.shape[-1], f"{label}.lengths")
        unresolved = guard_resolution("align", f"{label}.times", given, lengths)
        if validate:
            if k == 0:  # one marker: its lowering raises first when checkify is missing
                lengths = requires_checkify(lengths, op="align")
            check_times("align", f"{label}.times", times,
                        lengths if raw is None else jnp.asarray(raw), times.shape[-1],
                        unresolved, lengths_label=f"{label}.lengths")
        guarded.append((values, times, lengths))
    return guarded


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


def _kernel_writes(dtype, out_dtype: str) -> bool:
    """Whether the kernel writes a stream of ``dtype`` as ``out_dtype`` with one rounding
    (``codes.ALIGN_KERNEL_WRITES``: a 16-bit output from float64 is converted by XLA)."""
    return jnp.dtype(out_dtype).name in ALIGN_KERNEL_WRITES.get(jnp.dtype(dtype).name, ())


def _kernel_concatenates(dtypes) -> bool:
    """Whether the kernel writes this concatenation: each dtype is the promoted one, or a
    16-bit dtype promoted to float32 (float64 mixes go through an XLA concatenation)."""
    out = jnp.result_type(*dtypes)
    return all(d == out or (out == jnp.float32 and d in (jnp.bfloat16, jnp.float16))
               for d in map(jnp.dtype, dtypes))


#: Concatenation order of ``fuse_multimodal`` (its argument order).
FUSE_ORDER = ("vision", "proprio", "force")


def fuse_multimodal(vision, vision_times, proprio, proprio_times, force, force_times,
                    target_times, *, out_of_range: str = "clamp", validate: bool = False,
                    out_dtype=None):
    """Three streams, linearly interpolated onto ``target_times`` and concatenated.

    Args:
      vision, vision_times: ``[..., S_v, D_v]`` values and ``[..., S_v]`` times.
      proprio, proprio_times: ``[..., S_p, D_p]`` and ``[..., S_p]``.
      force, force_times: ``[..., S_f, D_f]`` and ``[..., S_f]``.
      target_times: ``[..., T]`` or ``[T]``, the clock.
      out_of_range: ``"clamp"`` (default), ``"nan"`` or ``"extrapolate"``.

    This is ``align({"vision": ..., "proprio": ..., "force": ...}, target_times)`` with
    ``method="linear"`` for all three, concatenated in argument order (vision,
    proprio, force) by the kernel itself: ``[..., T, D_vision + D_proprio +
    D_force]`` in the promoted dtype of the three (e.g. bfloat16 vision +
    float32 -> float32; each value is rounded to its stream's dtype first, so
    the result equals concatenating the per-stream outputs). Each ``*_times``
    argument follows ``align``'s timestamp rules; ``out_of_range`` is
    ``align``'s. Full contract: docs/ops/align.md. ``validate`` and ``out_dtype``
    (e.g. ``jnp.bfloat16``: the result in bfloat16) as in ``align``.
    """
    streams = {"vision": Stream(vision, vision_times), "proprio": Stream(proprio, proprio_times),
               "force": Stream(force, force_times)}
    return align(streams, target_times, out_of_range=out_of_range, concatenate=FUSE_ORDER,
                 out_dtype=out_dtype,
                 validate=validate).concatenated()


# -- registration ------------------------------------------------------------
def _ffi_attrs(methods, offsets, tolerances, windows, out_of_range, columns=None,
               concat_dtype=None, out_dtype=None):
    # concat_dtype / out_dtype reach the kernel as its output buffers' element types
    return dict(methods=np.asarray(methods, np.int32), offsets=np.asarray(offsets, np.float64),
                tolerances=np.asarray(tolerances, np.float64),
                windows=np.asarray(windows, np.float64),
                columns=np.asarray(columns or (0,) * len(methods), np.int64),
                out_of_range=np.int32(out_of_range), concatenated=np.int32(columns is not None))


_align_op = FfiOp("align", twin=align_twin, abstract_eval=_align_abstract_eval,
                  ffi_target="robocache_align", ffi_attrs=_ffi_attrs,
                  # the kernel reads each stream's values per episode; queries are operand 0
                  full_batch_operands=lambda n, **params: range(1, n, 3), query_operand=0)
