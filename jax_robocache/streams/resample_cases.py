"""The case catalogue of ``resample``: its random inputs, for every consumer (see _core/cases.py).

Generators: ``episodes`` (irregular clocks with duplicate timestamps, ragged
lengths, garbage past each length, queries mixing random instants, exact
sample times and midpoints) and ``clean_episodes`` (strictly increasing
clocks, every sample valid, sorted queries inside the samples: the inputs of
the simple numpy baselines). ``sorted_times`` and ``stream_samples`` are the
pieces ``align``'s catalogue shares.

Cases: ``<method>_<out_of_range>`` for every valid pair (``episodes``),
``shared_clock`` (one query clock for the whole batch) and ``inside``
(``clean_episodes``).
"""

from __future__ import annotations

import functools

import numpy as np

from .._core.cases import Call, Case, sized
from .resample import resample

SIZES = {"small": dict(B=4, S=17, D=3, T=23, value_dtype=np.float32),
         "large": dict(B=8, S=300, D=6, T=100, value_dtype=np.float32)}
ARRAYS = ("values", "times", "query_times", "lengths")


def sorted_times(rng, shape, *, duplicates=True, start=None, mean_gap=0.01):
    """Non-decreasing float64 timestamps [..., S] with jitter and optional repeats."""
    gaps = rng.exponential(mean_gap, shape)
    if duplicates and shape[-1] > 2:
        gaps[..., 1:] *= rng.random(shape[:-1] + (shape[-1] - 1,)) > 0.15
    if start is None:
        start = rng.uniform(-1.0, 1.0, shape[:-1] + (1,))
    return start + np.cumsum(gaps, axis=-1)


def stream_samples(rng, times, D, *, dtype=np.float32, quaternions=False, ragged=True,
                   lengths=None):
    """values [B,S,D] (unit quaternions [B,S,4] if asked) and lengths [B] for times [B,S].

    Lengths are random when ``ragged`` (episode 0 full, episode 1 with one
    sample) unless given (``lengths`` [B], any integers: clamped into [0, S]
    to place the garbage). Past each length the samples hold garbage that no
    output may use: huge values, a NaN, and unsorted times (``times`` is
    modified in place).
    """
    B, S = times.shape
    if quaternions:
        values = rng.normal(size=(B, S, 4))
        values /= np.linalg.norm(values, axis=-1, keepdims=True)
    else:
        values = rng.normal(size=(B, S, D)) * rng.uniform(0.5, 3.0)
    values = values.astype(dtype)
    if lengths is None:
        lengths = (rng.integers(0, S + 1, B) if ragged else np.full(B, S)).astype(np.int32)
        if ragged and B > 2:
            lengths[0], lengths[1] = S, min(1, S)
    for b in range(B):
        n = min(max(int(lengths[b]), 0), S)
        values[b, n:] = np.asarray(6e4, dtype)
        if S > n:
            values[b, n] = np.nan
            times[b, n:] = rng.uniform(-5, 5, S - n)
    return values, lengths


def episodes(rng, B, S, D, T, *, value_dtype=np.float32, time_dtype=np.float32, ragged=True,
             quaternions=False, duplicates=True):
    """Returns values [B,S,D], times [B,S], queries [B,T], lengths [B] (numpy).

    Samples past an episode's length hold garbage (large values, NaN and
    unsorted times) that no output may use. Queries mix random instants
    (some outside the range), exact sample times and segment midpoints.
    """
    times = sorted_times(rng, (B, S), duplicates=duplicates).astype(time_dtype)
    times = np.sort(times, axis=-1)  # the cast may reorder nothing, but keep it certain
    values, lengths = stream_samples(rng, times, D, dtype=value_dtype, quaternions=quaternions,
                                     ragged=ragged)  # garbage past lengths: never read
    queries = np.empty((B, T), np.float64)
    for b in range(B):
        n = lengths[b]
        lo, hi = (times[b, 0], times[b, n - 1]) if n else (0.0, 1.0)
        span = max(hi - lo, 1e-3)
        q = rng.uniform(lo - 0.2 * span, hi + 0.2 * span, T)
        if n and T:
            k = rng.integers(0, T, max(T // 4, 1))
            q[k] = times[b, rng.integers(0, n, k.size)]  # exact sample times
            if n > 1:
                m = rng.integers(0, T, max(T // 8, 1))
                i = rng.integers(0, n - 1, m.size)
                q[m] = 0.5 * (times[b, i].astype(np.float64) + times[b, i + 1])
        queries[b] = q
    return values, times, queries.astype(time_dtype), lengths


def clean_episodes(rng, B, S, D, T, *, value_dtype=np.float32, duration=5.0):
    """values [B,S,D], times [B,S] (jittered, strictly increasing over ``duration`` seconds),
    sorted queries [B,T] inside each episode's samples; every sample valid."""
    gaps = rng.uniform(0.5, 1.5, (B, S)) * (duration / S)
    times = np.cumsum(gaps, axis=1).astype(np.float32)
    queries = np.sort(rng.uniform(times[:, :1], times[:, -1:], (B, T)), axis=1).astype(np.float32)
    values = rng.standard_normal((B, S, D), np.float32).astype(value_dtype)
    return values, times, queries


def _call(arrays, batched, **options):
    def fn(values, times, query_times, lengths=None):
        return resample(values, times, query_times, lengths=lengths, **options)
    return Call(fn, arrays, batched, options)


def _episodes_case(rng, size="small", *, method, out_of_range, return_valid=False, **overrides):
    p = sized(SIZES, size, overrides)
    slerp = method == "slerp"
    arrays = dict(zip(ARRAYS, episodes(rng, p["B"], p["S"], 4 if slerp else p["D"], p["T"],
                                       value_dtype=p["value_dtype"], quaternions=slerp)))
    return _call(arrays, ARRAYS, method=method, out_of_range=out_of_range,
                 return_valid=return_valid)


def _shared_clock_case(rng, size="small", *, method="previous", out_of_range="clamp",
                       return_valid=False, **overrides):
    """Per-episode samples, one query clock ``[T]`` (over [-0.5, 1]) for the whole batch."""
    p = sized(SIZES, size, overrides)
    values, times, _, lengths = episodes(rng, p["B"], p["S"], p["D"], 0,
                                         value_dtype=p["value_dtype"])
    clock = np.linspace(-0.5, 1.0, p["T"], dtype=np.float32)
    arrays = dict(values=values, times=times, query_times=clock, lengths=lengths)
    return _call(arrays, ("values", "times", "lengths"), method=method,
                 out_of_range=out_of_range, return_valid=return_valid)


def _inside_case(rng, size="small", *, method="linear", **overrides):
    p = sized(SIZES, size, overrides)
    arrays = dict(zip(ARRAYS, clean_episodes(rng, p["B"], p["S"], p["D"], p["T"],
                                             value_dtype=p["value_dtype"])))
    return _call(arrays, ARRAYS[:3], method=method)


def _cases():
    cases = {}
    for method in ("linear", "nearest", "previous", "slerp"):
        for policy in ("clamp", "nan") + (("extrapolate",) if method == "linear" else ()):
            name = f"{method}_{policy}"
            cases[name] = Case(name, functools.partial(_episodes_case, method=method,
                                                       out_of_range=policy))
    cases["shared_clock"] = Case("shared_clock", _shared_clock_case)
    cases["inside"] = Case("inside", _inside_case)
    return cases


#: name -> Case (see the module docstring).
CASES = _cases()
