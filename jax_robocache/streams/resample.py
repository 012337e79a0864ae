"""``resample``: batched time series evaluated at new timestamps.

The contract (every method, edge case, dtype and error) is docs/ops/resample.md; the public
function's docstring summarises it. This module holds the argument checks, the abstract
evaluation, the public function and the ``FfiOp`` registration (CUDA target
``robocache_resample``); the jnp twin is ``resample_twin`` (on the planner twin ``interp``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._core.checks import requires_checkify
from .._core.contract import (METHODS, OUT_OF_RANGE, TIME_DTYPES, VALUE_DTYPES, broadcast_leading,
                              check_choice, check_dtype, check_min_rank, check_same_host_dtype,
                              as_jax, check_lengths, check_sample_axis, feature_axis_hint,
                              to_canonical, valid_lengths)
from .._core.eager import is_traced, staged
from .._core.primitive import FfiOp
from ..jax_compat import ShapedArray, x64_enabled
from .resample_twin import resample_twin
from .timestamps import is_host_wide_timestamps, relative_timestamps
from .validate import check_times, guard_resolution, raise_if_unresolved, resolved_lengths

__all__ = ["resample"]


# -- abstract evaluation (canonical operands) -------------------------------
def _resample_abstract_eval(values, times, queries, lengths, *, method, out_of_range):
    B, _, D = values.shape
    T = queries.shape[1]
    return (ShapedArray((B, T, D), values.dtype),
            ShapedArray((B, T), jnp.bool_))


# -- the public function -------------------------------------------------------
def _prepare_timestamps(times, query_times, lengths):
    """Host float64/int64 timestamps -> episode-relative seconds (float32 unless x64)."""
    wide_t, wide_q = is_host_wide_timestamps(times), is_host_wide_timestamps(query_times)
    if not (wide_t or wide_q):
        return times, query_times
    if x64_enabled() and all(np.asarray(x).dtype == np.float64 for x in (times, query_times)
                             if isinstance(x, np.ndarray)) and wide_t and wide_q:
        return jnp.asarray(times), jnp.asarray(query_times)  # float64 end to end
    if not (wide_t and wide_q):
        check_same_host_dtype([("times", times), ("query_times", query_times)])
        raise TypeError(
            "times and query_times must both be host numpy arrays when either holds float64 or "
            "int64 timestamps (they are converted together to episode-relative seconds); got "
            f"times {type(times).__name__} {getattr(times, 'dtype', '')} and query_times "
            f"{type(query_times).__name__} {getattr(query_times, 'dtype', '')}. Use "
            "jax_robocache.relative_timestamps before jit.")
    host_lengths = None if lengths is None or not isinstance(lengths, np.ndarray) else lengths
    rel_t, rel_q, _ = relative_timestamps(np.asarray(times), np.asarray(query_times),
                                          lengths=[host_lengths, None])
    return rel_t, rel_q


def resample(values, times, query_times, *, lengths=None, method: str = "linear",
             out_of_range: str = "clamp", return_valid: bool = False, validate: bool = False):
    """Evaluates batched time series at new timestamps (linear, nearest, previous, slerp).

    ``resample(values, times, query_times)`` -> ``[..., T, D]``; with
    ``return_valid=True`` -> ``(out, valid)``. Full contract: docs/ops/resample.md.

    Args:
      values: ``[..., S, D]`` float32 / bfloat16 / float16 (float64 with x64);
        ``[..., S, 4]`` quaternions (x, y, z, w) for ``slerp``. A 1-D signal
        needs a trailing feature axis (``values[..., None]``).
      times: ``[..., S]`` sample times in seconds, non-decreasing within
        ``lengths``; float32 (float64 with x64), or host numpy float64 / int64
        epoch stamps (see below).
      query_times: ``[..., T]``, or ``[T]`` shared by every episode; the dtype
        of ``times``; any order.
      lengths: ``[...]`` integer valid samples per episode (default S; clamped
        into [0, S]; samples past it are never read).
      method: ``"linear"`` (default), ``"nearest"`` (ties to the lowest index),
        ``"previous"`` (zero-order hold) or ``"slerp"`` (shorter arc, normalised).
      out_of_range: for queries outside [t_0, t_{n-1}]: ``"clamp"`` (default,
        the edge sample), ``"nan"``, or ``"extrapolate"`` (``linear`` only).
      return_valid: also return ``valid [..., T]`` bool: n > 0 and
        t_0 <= q <= t_{n-1} (false for a NaN query), whatever ``out_of_range``.
      validate: check that valid times are finite and non-decreasing and that
        lengths lie in [0, S]: raises eagerly; under ``jit`` wrap the jitted
        function in ``jax.experimental.checkify.checkify``.

    Returns:
      ``[..., T, D]`` in the dtype of ``values`` (arithmetic in float32, float64
      for float64), and ``valid [..., T]`` if asked for. An empty episode gives
      zeros (NaN under ``"nan"``); a NaN query gives NaN.

    Epoch timestamps: float32 cannot hold epoch seconds (it rounds them to
    128 s). Pass them as numpy float64 / int64 (converted exactly on the host to
    seconds relative to one origin per episode), or convert them first with
    ``jax_robocache.relative_timestamps`` (needed before ``jit``). Times that
    arrive already rounded are detected: a ValueError when they are known, NaN
    and ``valid=False`` for that episode under ``jit``.

    Shape, dtype and option errors raise ValueError / TypeError at trace time,
    naming the argument. Gradients: w.r.t. ``values`` (every method) and
    ``query_times`` / ``times`` (``linear``, ``slerp``), from the jnp twin's JVP.
    Works under ``jit``, ``vmap``, ``lax.scan`` and batch sharding.
    """
    check_choice("method", method, METHODS)
    check_choice("out_of_range", out_of_range, OUT_OF_RANGE)
    if out_of_range == "extrapolate" and method != "linear":
        raise ValueError(f"out_of_range='extrapolate' needs method='linear', got {method!r}")
    times, query_times = _prepare_timestamps(times, query_times, lengths)
    given_times = times  # numpy stays numpy: the resolution guard sees known values
    values, times, query_times = (as_jax(x) for x in (values, times, query_times))

    check_min_rank("values", values, 2, "[..., S, D]", feature_axis_hint("values", values))
    check_min_rank("times", times, 1, "[..., S]")
    check_min_rank("query_times", query_times, 1, "[..., T]")
    check_dtype("values", values, VALUE_DTYPES)
    hint = ("; integer timestamps must be numpy int64 nanoseconds (converted on the host) or "
            "go through jax_robocache.relative_timestamps")
    for name, x in (("times", times), ("query_times", query_times)):
        check_dtype(name, x, TIME_DTYPES, hint if jnp.issubdtype(x.dtype, jnp.integer) else "")
    if times.dtype != query_times.dtype:
        raise TypeError(f"times and query_times must share a dtype, got {times.dtype.name} and "
                        f"{query_times.dtype.name}")
    check_sample_axis("values", values, "times", times)
    S, D = values.shape[-2:]
    if method == "slerp" and D != 4:
        raise ValueError(f"method='slerp' needs quaternion values [..., S, 4] (x, y, z, w), got "
                         f"values {tuple(values.shape)}")
    lengths = check_lengths(lengths)
    lead = broadcast_leading({"values": values.shape[:-2], "times": times.shape[:-1],
                              "query_times": query_times.shape[:-1],
                              "lengths": np.shape(lengths)})
    options = dict(lead=tuple(lead), method=METHODS[method],
                   out_of_range=OUT_OF_RANGE[out_of_range], return_valid=return_valid)
    if not validate and not is_traced((values, times, query_times, lengths)):
        # An eager call: the resolution mask in the same program, its error after it.
        out, unresolved = staged(_resample_resolved, values, times, query_times, lengths, S=S,
                                 **options)
        raise_if_unresolved("resample", "times", given_times, lengths, S, unresolved)
        return out
    raw_lengths = lengths
    with jax.ensure_compile_time_eval():  # known lengths stay known (the guard needs them)
        lengths = valid_lengths(lengths, S)
    unresolved = guard_resolution("resample", "times", given_times, lengths)
    if validate:  # on the lengths as given: out-of-range values are reported, not clamped
        checked = lengths if raw_lengths is None else jnp.asarray(raw_lengths)
        lengths = requires_checkify(lengths, op="resample")  # bound before the checks
        check_times("resample", "times", times, checked, S, unresolved)
    return staged(_resample_arrays, values, times, query_times, lengths, **options)


def _resample_resolved(values, times, query_times, lengths, *, S, **options):
    """One program of an eager call: lengths and the resolution mask, then the array work;
    returns (output, unresolved mask) for the eager error."""
    lengths, unresolved = resolved_lengths(times, lengths, S)
    return _resample_arrays(values, times, query_times, lengths, **options), unresolved


def _resample_arrays(values, times, query_times, lengths, *, lead, method, out_of_range,
                     return_valid):
    """The array work of a checked call: canonical operands, the bind, the outputs' shapes."""
    T, D = query_times.shape[-1], values.shape[-1]
    # Every operand gets the full episode axis (cheap for times/queries/lengths):
    # XLA then partitions the custom call along it when episodes are sharded.
    operands = (to_canonical(values, lead, values.ndim - 2, full=True),
                to_canonical(times, lead, times.ndim - 1, full=True),
                to_canonical(query_times, lead, query_times.ndim - 1, full=True),
                to_canonical(lengths, lead, lengths.ndim, full=True))
    out, valid = _resample_op.bind(*operands, method=method, out_of_range=out_of_range)
    out = out.reshape(tuple(lead) + (T, D))
    if return_valid:
        return out, valid.reshape(tuple(lead) + (T,))
    return out


# -- registration ------------------------------------------------------------
_resample_op = FfiOp(
    "resample", twin=resample_twin, abstract_eval=_resample_abstract_eval,
    ffi_target="robocache_resample",
    full_batch_operands=lambda n, **params: (0,),  # the kernel reads values per episode
    query_operand=2,
    ffi_attrs=lambda method, out_of_range: dict(method=np.int32(method),
                                                out_of_range=np.int32(out_of_range)))
