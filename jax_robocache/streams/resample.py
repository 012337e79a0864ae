"""``resample``: batched time series evaluated at new timestamps.

Contract (see README's semantics table):

* ``values [..., S, D]`` float32 / bfloat16 / float16 (float64 with x64);
  ``times [..., S]`` float32 (float64 with x64), sorted ascending within the
  first ``lengths`` samples; ``query_times [..., T]`` (or a plain ``[T]``
  shared by every episode) in any order, same dtype as ``times``;
  ``lengths [...]`` integer, default S. Leading dims broadcast (NumPy rules).
* Output ``[..., T, D]`` in the dtype of ``values``; arithmetic in float32
  (float64 for float64 values). With ``return_valid=True`` also
  ``valid [..., T]`` bool: n > 0 and t_0 <= q <= t_{n-1} (and q not NaN).
* For an episode with n valid samples and i the largest index with t_i <= q:
  ``linear`` interpolates between t_i and t_{i+1} (q == t_i uses sample i
  alone); ``previous`` holds values[i]; ``nearest`` takes argmin |q - t_j|,
  ties (duplicate timestamps included) to the lowest index; ``slerp``
  interpolates unit quaternions (x, y, z, w) along the shorter arc and
  normalises (near-parallel pairs are lerped then normalised, never NaN).
* Queries outside [t_0, t_{n-1}], for every method: ``"clamp"`` holds the
  edge sample (values[0] before, values[n-1] after; ``nearest`` takes the
  first of duplicated last timestamps), ``"nan"`` returns NaN,
  ``"extrapolate"`` (linear only) extends the first/last segment; a
  zero-length edge segment (duplicate timestamps, or n == 1) holds the edge
  value. n == 0 gives NaN under ``"nan"`` and zeros otherwise. A NaN query
  gives NaN. NaN in ``values`` reaches only outputs that use that sample.
* ``lengths`` outside [0, S] are clamped into it; unsorted or NaN timestamps
  give unspecified values but never an out-of-bounds access.
  ``validate=True`` checks lengths, finiteness, sortedness and resolution:
  eagerly it raises; under ``jit`` wrap the function with
  ``jax.experimental.checkify.checkify`` (without it compiling raises an
  error that shows the wrapping).
* Host (numpy) float64 / int64 timestamps (epoch seconds, ROS nanoseconds)
  are converted on the host to episode-relative seconds before anything is
  cast to float32 (see ``jax_robocache.timestamps``). Times already rounded
  (float32 epoch stamps, jnp arrays without x64, jit of raw numpy float64)
  are caught by the resolution rule (``streams/timestamps.py``; docs/ops/
  resample.md "Epoch timestamps"): known values raise a ValueError saying
  what to do; traced ones make every query of the unresolved episode NaN
  (values NaN, ``valid`` False) under every ``out_of_range`` policy.
* ``jax.vmap`` over any subset of the arguments, any ``in_axes`` /
  ``out_axes``, nested, with ``jit``, ``grad``, ``scan`` and ``shard_map``
  (docs/ops/resample.md "vmap").
* Gradients: with respect to ``values`` for every method, and ``query_times``
  (and ``times``) for ``linear`` (and ``slerp``); ``previous``/``nearest``
  are piecewise constant in time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._core.checks import requires_checkify
from .._core.contract import (METHODS, OUT_OF_RANGE, TIME_DTYPES, VALUE_DTYPES, broadcast_leading,
                              check_choice, check_dtype, check_min_rank, check_same_host_dtype,
                              check_sample_axis, feature_axis_hint, to_canonical, valid_lengths)
from .._core.primitive import FfiOp
from ..jax_compat import ShapedArray, x64_enabled
from .resample_twin import resample_twin
from .timestamps import is_host_wide_timestamps, relative_timestamps
from .validate import check_times, guard_resolution, mark_unresolved

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
    """Evaluates batched time series at new timestamps.

    Args:
      values: ``[..., S, D]`` samples (``[..., S, 4]`` quaternions xyzw for slerp).
      times: ``[..., S]`` sample timestamps, non-decreasing within ``lengths``.
      query_times: ``[..., T]`` or ``[T]`` timestamps to evaluate at, any order.
      lengths: ``[...]`` number of valid samples per episode (default S).
      method: ``"linear"``, ``"nearest"``, ``"previous"`` or ``"slerp"``.
      out_of_range: ``"clamp"``, ``"nan"`` or ``"extrapolate"`` (linear only).
      return_valid: also return ``valid [..., T]``.
      validate: check timestamps and lengths (eager raise; checkify under jit).

    Returns:
      ``[..., T, D]`` in the dtype of ``values``, and ``valid`` if asked for.
      See the module docstring for the complete semantics.
    """
    check_choice("method", method, METHODS)
    check_choice("out_of_range", out_of_range, OUT_OF_RANGE)
    if out_of_range == "extrapolate" and method != "linear":
        raise ValueError(f"out_of_range='extrapolate' needs method='linear', got {method!r}")
    times, query_times = _prepare_timestamps(times, query_times, lengths)
    given_times = times  # numpy stays numpy: the resolution guard sees known values
    values, times, query_times = (jnp.asarray(x) for x in (values, times, query_times))

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
    raw_lengths = None if lengths is None else jnp.asarray(lengths)
    with jax.ensure_compile_time_eval():  # known lengths stay known (the guard needs them)
        lengths = valid_lengths(lengths, S)
    unresolved = guard_resolution("resample", "times", given_times, lengths)

    lead = broadcast_leading({"values": values.shape[:-2], "times": times.shape[:-1],
                              "query_times": query_times.shape[:-1],
                              "lengths": lengths.shape})
    if validate:  # on the lengths as given: out-of-range values are reported, not clamped
        checked = lengths if raw_lengths is None else raw_lengths
        lengths = requires_checkify(lengths, op="resample")  # bound before the checks
        check_times("resample", "times", times, checked, S, unresolved)
    lengths = mark_unresolved(lengths, unresolved)

    T = query_times.shape[-1]
    # Every operand gets the full episode axis (cheap for times/queries/lengths):
    # XLA then partitions the custom call along it when episodes are sharded.
    operands = (to_canonical(values, lead, values.ndim - 2, full=True),
                to_canonical(times, lead, times.ndim - 1, full=True),
                to_canonical(query_times, lead, query_times.ndim - 1, full=True),
                to_canonical(lengths, lead, lengths.ndim, full=True))
    out, valid = _resample_op.bind(*operands, method=METHODS[method],
                                   out_of_range=OUT_OF_RANGE[out_of_range])
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
