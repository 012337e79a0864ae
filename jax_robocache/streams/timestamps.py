"""Precision-safe timestamps: epoch time on the host, episode-relative seconds on the device.

Robot logs stamp samples with float64 epoch seconds (~1.7e9) or int64
nanoseconds (ROS). As float32 those round to multiples of 128 s, which would
silently destroy any resampling. The rule in jax_robocache:

* ``relative_timestamps`` converts host (numpy) float64/int64 timestamps of
  one or more arrays to seconds relative to a per-episode origin shared by all
  of them, computed exactly (int64 subtraction, or float64 subtraction of
  nearby values) before the cast to float32 (float64 when ``jax_enable_x64``).
* ``resample`` and ``align`` call it themselves when they receive host
  (numpy) float64/int64 timestamps, so passing raw epoch stamps as numpy
  arrays is safe. A device (``jnp``) array, a float32 array or a ``jit``
  argument holds stamps already rounded: convert them with
  ``relative_timestamps`` first (docs/ops/resample.md, "Epoch timestamps").
* Traced (on-device) integer timestamps are refused with a TypeError, because
  they would have been truncated already.

Resolution of float32 relative seconds: ~60 ns at 1 s, ~1 us at 10 s,
~0.25 ms at 2048 s. Episodes longer than ~30 min should enable x64 (a warning
is emitted).

Timestamps that reach the device already rounded (float32 epoch seconds, a
``jnp`` array of epoch stamps without x64, ``jax.jit`` of raw numpy float64
stamps) cannot be repaired; ``resample`` and ``align`` detect them with the
*resolution rule* (``unresolved_episodes``): an episode (of a stream) with
n >= 2 valid samples t_0 <= ... <= t_{n-1} is unresolved when

    4 * eps * max(|t_0|, |t_{n-1}|) * (n - 1) > max(|t_{n-1} - t_0|, (n - 1) * 1e-6)

computed in the time dtype, eps its machine epsilon (2**-23 for float32,
2**-52 for float64): the dtype's resolution near the episode (up to
eps |t|) exceeds a quarter of its mean sample spacing, so rounding moves a
timestamp by more than an eighth of a spacing. Mean spacings under 1 us
count as 1 us (the fastest sample rate supported is 1 MHz): an episode whose
samples share one timestamp is flagged only where the dtype could have
merged 1 MHz samples (|t| > ~2.1 s in float32), never near zero.
Epoch seconds (~1.7e9, 128 s apart in float32) fail the rule for any stream
faster than one sample per ~14 min; float32 seconds of a long log fail it
at 100 Hz beyond ~2e4 s. One sample, NaN or infinite edge times never fail
it (``validate=True`` reports the latter).

When the times are known (eager calls; numpy or concrete arrays, even
inside ``jit``) an unresolved episode raises a ValueError that says what to
do; under ``jit`` (traced times) every query of the episode is treated as a
NaN query: NaN values, ``valid`` False (and ``age`` NaN in ``align``),
whatever ``out_of_range`` says; ``validate=True`` under ``checkify``
reports it.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from .._core.codes import MIN_SAMPLE_SPACING_S, RESOLUTION_FACTOR
from ..jax_compat import x64_enabled

# RESOLUTION_FACTOR: mean sample spacing, in units of eps * |t|, below which times are
# unresolved. MIN_SAMPLE_SPACING_S: smaller mean sample spacings count as this one (1 MHz,
# the fastest rate supported). Both shared with the CUDA kernels (csrc/common/constants.h).

#: Integer stamps per second, by unit.
_UNITS_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
# Beyond this many seconds float32 resolves worse than 0.25 ms.
_FLOAT32_SAFE_SPAN_S = 2048.0


def is_host_wide_timestamps(x) -> bool:
    """Whether ``x`` is host data whose dtype is float64 or a 64-bit integer."""
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    return isinstance(x, np.ndarray) and x.dtype in (np.float64, np.int64, np.uint64)


def relative_timestamps(*timestamps, lengths: Sequence | None = None, unit: str = "ns",
                        dtype=None):
    """Converts host timestamps to seconds relative to a per-episode origin.

    Args:
      *timestamps: numpy arrays ``[..., N_k]`` (float64/float32 seconds, or
        integers in ``unit``), all with the same leading (episode) shape, or
        1-D ``[N_k]`` arrays shared by every episode (e.g. a query clock).
      lengths: optional per-array valid lengths (``None`` entries mean all
        valid); the origin is taken only from valid samples.
      unit: unit of integer timestamps: ``"ns"`` (default, ROS), ``"us"``,
        ``"ms"`` or ``"s"``. Float timestamps are seconds.
      dtype: output dtype; default float32, or float64 when x64 is enabled.

    Returns:
      ``(*relative, origin)``: each relative array has the full leading shape
      ``[..., N_k]`` (shared 1-D inputs are broadcast, because episodes differ
      in origin); ``origin [...]`` holds the origin in the input's own units
      (int64 or float64). The origin of an episode is the smallest finite
      first valid timestamp over the arrays (0 if there is none).
    """
    if unit not in _UNITS_PER_SECOND:
        raise ValueError(f"unit must be one of {sorted(_UNITS_PER_SECOND)}, got {unit!r}")
    if not timestamps:
        raise ValueError("relative_timestamps needs at least one timestamp array")
    arrays = [np.asarray(t) for t in timestamps]
    lengths = list(lengths) if lengths is not None else [None] * len(arrays)
    if len(lengths) != len(arrays):
        raise ValueError("lengths must have one entry per timestamp array")
    integer = [np.issubdtype(a.dtype, np.integer) for a in arrays]
    if any(integer) and not all(integer):
        raise TypeError("timestamps mix integer and floating arrays; convert them to one "
                        f"representation first (dtypes {[a.dtype.name for a in arrays]})")
    for k, a in enumerate(arrays):
        if a.ndim < 1:
            raise ValueError(f"timestamps[{k}] must have shape [..., N], got a scalar")
    lead_shapes = [a.shape[:-1] for a in arrays if a.ndim > 1]
    lead = lead_shapes[0] if lead_shapes else ()
    for k, a in enumerate(arrays):
        if a.ndim > 1 and a.shape[:-1] != lead:
            raise ValueError(f"timestamps[{k}] has leading shape {a.shape[:-1]}, expected "
                             f"{lead} (or a 1-D array shared by all episodes)")

    wide = np.int64 if integer[0] else np.float64
    firsts = []
    for a, n in zip(arrays, lengths):
        a = np.broadcast_to(a, lead + a.shape[-1:]).astype(wide, copy=False)
        if a.shape[-1] == 0:
            continue
        first = a[..., 0].astype(np.float64) if not integer[0] else a[..., 0]
        ok = np.ones(lead, bool) if integer[0] else np.isfinite(first)
        if n is not None:
            ok &= np.broadcast_to(np.asarray(n), lead) > 0
        firsts.append((first, ok))
    if integer[0]:
        big = np.iinfo(np.int64).max
        origin = np.full(lead, big, np.int64)
        for first, ok in firsts:
            origin = np.where(ok, np.minimum(origin, first), origin)
        origin = np.where(origin == big, 0, origin)
    else:
        origin = np.full(lead, np.inf)
        for first, ok in firsts:
            origin = np.where(ok, np.minimum(origin, first), origin)
        origin = np.where(np.isinf(origin), 0.0, origin)

    if dtype is None:
        dtype = np.float64 if x64_enabled() else np.float32
    out = []
    for a in arrays:
        a = np.broadcast_to(a, lead + a.shape[-1:])
        if integer[0]:
            rel = integer_seconds(a.astype(np.int64) - origin[..., None], unit)
        else:
            rel = a.astype(np.float64) - origin[..., None]
        out.append(rel.astype(dtype))
        finite = np.abs(rel[np.isfinite(rel)])
        if (np.dtype(dtype) == np.float32 and finite.size
                and finite.max() > _FLOAT32_SAFE_SPAN_S):
            warnings.warn(
                f"relative timestamps span {finite.max():.0f} s; float32 resolves them only "
                f"to {np.spacing(np.float32(finite.max())):.2g} s. Enable jax_enable_x64 "
                "for long episodes.", stacklevel=2)
    return (*out, origin)


def integer_seconds(delta, unit: str = "ns") -> np.ndarray:
    """Differences of integer stamps in ``unit`` -> float64 seconds, correctly rounded: the
    exact int64 difference, then one division (exact below 2**53 units, ~104 days of
    nanoseconds). Multiplying by 1e-9 instead would be off by an ulp for ~40% of whole
    milliseconds (0.3 s would become 0.30000000000000004 and fall after a sample at 0.3)."""
    return np.asarray(delta, np.int64).astype(np.float64) / _UNITS_PER_SECOND[unit]


def unresolved_episodes(times, lengths, xp=None):
    """The resolution rule (module docstring): which episodes' times the dtype cannot resolve.

    Args:
      times: ``[..., S]`` floating timestamps (numpy or jax).
      lengths: ``[...]`` integer valid lengths (broadcast against the leading
        dims of ``times``), or None (all S valid); clamped into [0, S].
      xp: ``numpy`` or ``jax.numpy`` (default: numpy for numpy inputs).

    Returns:
      bool ``[...]`` (the broadcast leading shape), True for unresolved episodes.
    """
    if xp is None:
        host = isinstance(times, np.ndarray) and (
            lengths is None or isinstance(lengths, (np.ndarray, np.integer, int)))
        xp = np if host else _jnp()
    S = times.shape[-1]
    lead = times.shape[:-1] if lengths is None else np.broadcast_shapes(
        times.shape[:-1], np.shape(lengths))
    if S < 2:
        return xp.zeros(lead, bool)
    n = xp.full(lead, S, np.int32) if lengths is None else xp.clip(
        xp.broadcast_to(xp.asarray(lengths), lead), 0, S).astype(np.int32)
    t = xp.broadcast_to(times, tuple(lead) + (S,))
    t0 = t[..., 0]
    last = xp.take_along_axis(t, xp.clip(n - 1, 0, S - 1)[..., None], axis=-1)[..., 0]
    return unresolved_spans(t0, last, n, xp)


def unresolved_spans(t0, last, n, xp=np):
    """The resolution rule on each episode's first and last time (of the times' dtype) and
    its number of samples ``n``: True where the dtype cannot resolve the episode."""
    dtype = t0.dtype
    eps = np.finfo(dtype).eps
    magnitude = xp.maximum(xp.abs(t0), xp.abs(last))
    gaps = (n - 1).astype(dtype)
    bound = (magnitude * dtype.type(RESOLUTION_FACTOR * eps)) * gaps
    span = xp.maximum(xp.abs(last - t0), gaps * dtype.type(MIN_SAMPLE_SPACING_S))
    return (n >= 2) & (bound > span)


def _jnp():
    import jax.numpy as jnp
    return jnp


def resolution_error(op: str, label: str, times, lengths, unresolved) -> ValueError:
    """The error of an eager call with unresolved timestamps (host values of the first one)."""
    unresolved = np.asarray(unresolved)
    first = tuple(int(i) for i in np.argwhere(unresolved)[0])
    t = np.asarray(np.broadcast_to(np.asarray(times), unresolved.shape + times.shape[-1:]))
    S = t.shape[-1]
    n = S if lengths is None else int(np.clip(np.broadcast_to(np.asarray(lengths),
                                                              unresolved.shape)[first], 0, S))
    row = t[first][:n]
    magnitude = float(max(abs(row[0]), abs(row[-1])))
    where = f" (episode {first})" if first else ""
    return ValueError(
        f"{op}: {label}{where} cannot be resolved in {t.dtype.name}: {n} samples spanning "
        f"{float(row[-1]) - float(row[0]):.3g} s at magnitude {magnitude:.4g} s, where "
        f"{t.dtype.name} timestamps are {float(np.spacing(t.dtype.type(magnitude))):.3g} s "
        "apart (epoch seconds?). Pass the raw timestamps as numpy float64 seconds or int64 "
        "nanoseconds (times and query_times both; they are converted to episode-relative "
        "seconds on the host), convert them first with jax_robocache.relative_timestamps, "
        "or enable jax_enable_x64 and pass float64. See 'Epoch timestamps' in "
        f"docs/ops/{op}.md.")
