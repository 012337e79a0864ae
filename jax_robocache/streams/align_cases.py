"""The case catalogue of ``align``: its random inputs, for every consumer (see _core/cases.py).

Generators: ``make_stream`` (one stream of a batch over ~[0, 1] s: jitter,
duplicate timestamps, ragged lengths, garbage past each length) and
``clean_streams`` (strictly increasing clocks over one episode, every sample
valid, sorted queries inside every stream: the inputs of the simple numpy
baselines).

Cases (arrays named ``<stream>.values`` / ``.times`` / ``.lengths`` and
``query_times``): ``methods_clamp`` / ``methods_nan`` (one stream per method,
with offsets, tolerances, a window), ``extrapolate_offset``,
``shared_clock_concatenated`` (one query clock, the kernel's concatenation),
``shared_times`` (a camera clock shared by the batch, a shared query clock),
``fuse_multimodal`` and ``mixed_inside`` (``clean_streams``: linear,
previous and window_mean streams queried inside every stream).
"""

from __future__ import annotations

import functools

import numpy as np

from .._core.cases import Call, Case, sized
from .align import align, fuse_multimodal
from .resample_cases import sorted_times, stream_samples
from .stream import Stream

#: B episodes, T queries; each stream's S is multiplied by ``scale``.
SIZES = {"small": dict(B=3, T=10, scale=1), "large": dict(B=8, T=64, scale=30)}

#: name -> (S, D, Stream metadata), one stream per method; names sort in this order.
ALL_METHODS = {
    "a_linear": (12, 2, dict(method="linear", offset=0.02)),
    "b_nearest": (9, 1, dict(method="nearest", tolerance=0.06)),
    "c_previous": (10, 1, dict(method="previous", offset=-0.03, tolerance=0.15)),
    "d_slerp": (8, 4, dict(method="slerp", tolerance=0.25)),
    "e_window": (30, 2, dict(method="window_mean", window=0.1, offset=0.01, tolerance=0.06)),
}
#: Two linear streams, one with an offset.
LINEAR_PAIR = {"a_linear": (9, 2, dict(method="linear")),
               "b_offset": (14, 3, dict(method="linear", offset=-0.05))}


def make_stream(rng, B, S, D, *, dtype=np.float32, quaternions=False, ragged=True):
    """values [B,S,D], times [B,S] over ~[0, 1] with jitter and duplicates, lengths [B].

    Samples past an episode's length hold garbage (NaN, huge values, unsorted
    times) that no output may use.
    """
    times = sorted_times(rng, (B, S), start=rng.uniform(-0.05, 0.05, (B, 1)),
                         mean_gap=1.0 / max(S, 1)).astype(np.float32)
    values, lengths = stream_samples(rng, times, D, dtype=dtype, quaternions=quaternions,
                                     ragged=ragged)
    return values, times, lengths


def clean_streams(rng, B, T, streams, *, duration=5.0):
    """Per stream of ``streams`` (name -> (S, D, dtype)): values [B,S,D] and times [B,S]
    (jittered, strictly increasing over ``duration`` seconds); then sorted queries [B,T]
    inside every stream's samples. A flat list: values, times, ..., queries."""
    operands = []
    for S, D, dtype in streams.values():
        times = np.cumsum(rng.uniform(0.5, 1.5, (B, S)) * (duration / S), axis=1)
        values = rng.standard_normal((B, S, D), np.float32)
        operands += [values.astype(dtype), times.astype(np.float32)]
    lo = max(t[:, 0].max() for t in operands[1::2])
    hi = min(t[:, -1].min() for t in operands[1::2])
    return operands + [np.sort(rng.uniform(lo, hi, (B, T)), axis=1).astype(np.float32)]


def _align_call(arrays, batched, metas, **options):
    def fn(**a):
        streams = {n: Stream(a[f"{n}.values"], a[f"{n}.times"], a.get(f"{n}.lengths"), **meta)
                   for n, meta in metas.items()}
        return align(streams, a["query_times"], **options)
    return Call(fn, arrays, tuple(batched), dict(options, streams=metas))


def _streams_case(rng, size="small", *, streams, out_of_range, shared_clock=False,
                  concatenate=False, dtypes=None, **overrides):
    """make_stream per stream of ``streams`` (values in ``dtypes[name]``, default float32),
    then a query clock over [-0.15, 1.15]."""
    p = sized(SIZES, size, overrides)
    B, T = p["B"], p["T"]
    arrays = {}
    for name, (S, D, meta) in streams.items():
        values, times, lengths = make_stream(rng, B, S * p["scale"], D,
                                             dtype=(dtypes or {}).get(name, np.float32),
                                             quaternions=meta["method"] == "slerp")
        arrays.update({f"{name}.values": values, f"{name}.times": times,
                       f"{name}.lengths": lengths})
    clock = rng.uniform(-0.15, 1.15, T if shared_clock else (B, T))
    arrays["query_times"] = np.sort(clock, axis=-1).astype(np.float32)
    batched = [k for k in arrays if k != "query_times" or not shared_clock]
    return _align_call(arrays, batched, {n: meta for n, (_, _, meta) in streams.items()},
                       out_of_range=out_of_range, concatenate=concatenate)


def _shared_times_case(rng, size="small", *, out_of_range="nan", **overrides):
    """Four streams (linear, slerp, window_mean, previous); the camera's timestamps [S] and
    the query clock [T] are shared by the batch, its lengths are per episode."""
    p = sized(SIZES, size, overrides)
    B, k = p["B"], p["scale"]
    metas = dict(joints=dict(method="linear"), rot=dict(method="slerp", tolerance=0.08),
                 ft=dict(method="window_mean", window=0.04, offset=-0.01),
                 cam=dict(method="previous", tolerance=0.1))
    arrays = {}
    for name, S, D, quaternions in (("joints", 30, 3, False), ("rot", 20, 4, True),
                                    ("ft", 80, 6, False)):
        values, times, lengths = make_stream(rng, B, S * k, D, quaternions=quaternions)
        arrays.update({f"{name}.values": values, f"{name}.times": times,
                       f"{name}.lengths": lengths})
    values, times, _ = make_stream(rng, B, 12 * k, 5, ragged=False)
    arrays.update({"cam.values": values, "cam.times": times[0],  # one camera clock
                   "cam.lengths": rng.integers(0, 12 * k + 1, B).astype(np.int32)})
    arrays["query_times"] = np.linspace(-0.1, 1.1, 17 * k, dtype=np.float32)
    batched = [n for n in arrays if n not in ("cam.times", "query_times")]
    return _align_call(arrays, batched, metas, out_of_range=out_of_range)


def _fuse_case(rng, size="small", **overrides):
    """fuse_multimodal: vision on one camera clock shared by the batch, proprio and force per
    episode (every sample valid), per-episode query times over [-0.1, 1.1]."""
    p = sized(SIZES, size, overrides)
    B, k = p["B"], p["scale"]
    arrays = {}
    for name, S, D in (("vision", 12, 5), ("proprio", 25, 2), ("force", 60, 3)):
        values, times, _ = make_stream(rng, B, S * k, D, ragged=False)
        arrays.update({name: values, f"{name}_times": times[0] if name == "vision" else times})
    arrays["target_times"] = rng.uniform(-0.1, 1.1, (B, p["T"])).astype(np.float32)
    batched = [n for n in arrays if n != "vision_times"]
    return Call(fuse_multimodal, arrays, tuple(batched), {})


#: mixed_inside's streams: name -> (S, D, Stream metadata) at scale 1.
MIXED = {"force": (500, 2, dict(method="window_mean", window=0.05)),  # >= 3 per window
         "gripper": (15, 1, dict(method="previous")),
         "joints": (50, 3, dict(method="linear"))}


def _mixed_inside_case(rng, size="small", **overrides):
    """clean_streams for MIXED, queries inside every stream and past the first full window."""
    p = sized(SIZES, size, overrides)
    B, T, k = p["B"], p["T"], p["scale"]
    *pairs, _ = clean_streams(rng, B, 0, {n: (S * k, D, np.float32)
                                          for n, (S, D, _) in MIXED.items()})
    window = max(meta.get("window", 0.0) for _, _, meta in MIXED.values())
    lo = max(t[:, 0].max() for t in pairs[1::2]) + window
    hi = min(t[:, -1].min() for t in pairs[1::2])
    arrays = {}
    for name, values, times in zip(MIXED, pairs[0::2], pairs[1::2]):
        arrays.update({f"{name}.values": values, f"{name}.times": times})
    arrays["query_times"] = rng.uniform(lo, hi, (B, T)).astype(np.float32)
    return _align_call(arrays, list(arrays), {n: meta for n, (_, _, meta) in MIXED.items()})


#: name -> Case (see the module docstring).
CASES = {
    "methods_clamp": Case("methods_clamp", functools.partial(
        _streams_case, streams=ALL_METHODS, out_of_range="clamp")),
    "methods_nan": Case("methods_nan", functools.partial(
        _streams_case, streams=ALL_METHODS, out_of_range="nan")),
    "extrapolate_offset": Case("extrapolate_offset", functools.partial(
        _streams_case, streams=LINEAR_PAIR, out_of_range="extrapolate")),
    "shared_clock_concatenated": Case("shared_clock_concatenated", functools.partial(
        _streams_case, streams=LINEAR_PAIR, out_of_range="nan", shared_clock=True,
        concatenate=True)),
    "shared_times": Case("shared_times", _shared_times_case),
    "fuse_multimodal": Case("fuse_multimodal", _fuse_case),
    "mixed_inside": Case("mixed_inside", _mixed_inside_case),
}
