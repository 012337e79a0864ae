"""Hypothesis fuzzing of resample and align against the independent numpy references.

Adversarial episodes: NaN, +-inf and huge (1e30) values, NaN and +-inf query times,
duplicate timestamps (coarse grids, large time offsets that float32 rounds
together), exact hits and midpoints, zero / negative / too large lengths with
garbage past them, S = 1, empty batches, shared query clocks, every method and
out_of_range policy, values in float32 / bfloat16 / float16 / float64 (x64).
Unsorted and non-finite timestamps, with and without ``validate``, have their
own test: validate must flag exactly the bad inputs, and without it the call
must still run and only ever return valid samples. Shapes come from fixed
buckets (see fuzz_support); HYPOTHESIS_PROFILE=long runs 10,000 examples per
op (conftest.py).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.experimental import checkify

from references import resample as reference
from references import align as reference_align
from fuzz_support import as_f64, assert_close, counted, examples, jitted, sprinkle
from jax_robocache import Stream, align, resample
from jax_robocache.streams.resample_cases import stream_samples

DTYPES = {"float32": np.float32, "bfloat16": jnp.bfloat16, "float16": np.float16,
          "float64": np.float64}
METHOD_POLICIES = [(m, p) for m in ("linear", "nearest", "previous", "slerp")
                   for p in ("clamp", "nan", "extrapolate") if p != "extrapolate" or m == "linear"]

#: (B, S, T, D, values dtype, shared [T] query clock, lengths given); slerp uses D = 4.
RESAMPLE_BUCKETS = (
    (1, 1, 5, 2, "float32", False, True),  # S = 1
    (3, 9, 12, 3, "float32", False, True),
    (2, 16, 7, 1, "bfloat16", True, True),  # one clock shared by the episodes
    (4, 5, 6, 2, "float16", False, True),
    (2, 7, 5, 2, "float32", False, False),  # lengths=None
    (0, 4, 3, 2, "float32", False, True),  # empty batch
    (2, 12, 9, 2, "float64", False, True),  # x64
)


def sorted_times(rng, B, S, kind):
    """[B, S] float64 non-decreasing times with duplicates: a 1/16 s grid, jitter with
    repeats, or epoch-like offsets that float32 rounds onto a coarse grid."""
    if kind == "grid":
        return np.sort(rng.integers(-8, 24, (B, S)), axis=1) / 16.0
    gaps = rng.exponential(0.05, (B, S)) * (rng.random((B, S)) > 0.2)
    times = rng.uniform(-1, 1, (B, 1)) + np.cumsum(gaps, axis=1)
    return times + (3.0e4 if kind == "offset" else 0.0)


def queries_for(rng, times, lengths, T, specials):
    """[B, T] float64: random instants around the valid range, exact sample times,
    midpoints, and (if ``specials``) NaN / +-inf."""
    B, S = times.shape
    q = np.empty((B, T))
    for b in range(B):
        n = min(max(int(lengths[b]), 0), S)
        lo, hi = (times[b, 0], times[b, n - 1]) if n else (0.0, 1.0)
        lo, hi = (lo, hi) if np.isfinite(lo) and np.isfinite(hi) and lo <= hi else (0.0, 1.0)
        span = max(float(hi) - float(lo), 1e-2)
        q[b] = rng.uniform(lo - 0.3 * span, hi + 0.3 * span, T)
        if n and T:
            pick = rng.random(T)
            i = rng.integers(0, n, T)
            q[b] = np.where(pick < 0.25, times[b, i], q[b])
            mid = 0.5 * (times[b, i] + times[b, np.minimum(i + 1, n - 1)])
            q[b] = np.where((pick >= 0.25) & (pick < 0.4), mid, q[b])
    if specials:
        sprinkle(rng, q, 0.08)
    return q


@st.composite
def resample_cases(draw):
    bucket = draw(st.sampled_from(RESAMPLE_BUCKETS))
    method, policy = draw(st.sampled_from(METHOD_POLICIES))
    B, S, T, D, dtype_name, shared, given_lengths = bucket
    D = 4 if method == "slerp" else D
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["grid", "jitter", "offset"]))
    bad_values = draw(st.sampled_from([0.0, 0.0, 0.05, 0.3]))
    scale = draw(st.sampled_from([1.0, 1e-3, 300.0, 1e30]))  # 1e30: inf in float16
    time_dtype = np.float64 if dtype_name == "float64" else np.float32
    times = sorted_times(rng, B, S, kind).astype(time_dtype)
    lengths = rng.integers(-2, S + 3, B).astype(np.int32) if given_lengths else np.full(B, S)
    values, _ = stream_samples(rng, times, D, dtype=np.float64, quaternions=method == "slerp",
                               lengths=lengths)
    if method != "slerp":
        values *= scale
    valid_rows = np.arange(S)[None, :, None] < np.clip(lengths, 0, S)[:, None, None]
    sprinkle(rng, values, bad_values, [np.nan] if method == "slerp" else None, where=valid_rows)
    with np.errstate(over="ignore"):  # scaled garbage past lengths may overflow float16: unread
        values = values.astype(DTYPES[dtype_name])
    queries = queries_for(rng, times, lengths, T, draw(st.booleans())).astype(time_dtype)
    if shared:
        queries = queries[0] if B else queries.reshape(-1)[:T]
    return dict(values=values, times=times, queries=queries,
                lengths=lengths if given_lengths else None, method=method, policy=policy)


@given(resample_cases())
@counted
def test_fuzz_resample(case):
    values, times, queries, lengths = (case[k] for k in ("values", "times", "queries", "lengths"))
    method, policy = case["method"], case["policy"]
    fn = jitted(resample, method=method, out_of_range=policy, return_valid=True)
    with jax.enable_x64(values.dtype == np.float64):
        out, valid = fn(values, times, queries, lengths=lengths)
        assert out.dtype == values.dtype and out.shape == values.shape[:1] + queries.shape[-1:] \
            + values.shape[-1:]
    with np.errstate(all="ignore"):  # inf - inf in the reference: NaN, as in the op
        ref, ref_valid = reference.resample(as_f64(values), times, queries, lengths, method,
                                            policy)
    err = f"{method}/{policy} {values.dtype} B,S,D={values.shape} lengths={lengths}"
    np.testing.assert_array_equal(valid, ref_valid, err_msg="valid " + err)
    assert_close(out, ref, err)


# -- unsorted / non-finite timestamps, bad lengths: validate, and safety without it -----------
DEFECTS = ("none", "unsorted", "nan", "inf", "-inf", "negative length", "long length")


def _validated(values, times, queries, lengths, *, method):
    return resample(values, times, queries, lengths=lengths, method=method, validate=True,
                    return_valid=True)


@functools.lru_cache(maxsize=None)
def _checked_resample(method):
    return jax.jit(checkify.checkify(functools.partial(_validated, method=method)))


@settings(max_examples=examples(0.4))
@given(st.integers(0, 2**32 - 1), st.sampled_from(DEFECTS),
       st.sampled_from(["linear", "nearest", "previous"]), st.sampled_from([(3, 8), (1, 1)]))
@counted
def test_fuzz_resample_validate_and_bad_times(seed, defect, method, shape):
    rng = np.random.default_rng(seed)
    (B, S), T, D = shape, 6, 2
    times = sorted_times(rng, B, S, "jitter").astype(np.float32)
    lengths = rng.integers(1, S + 1, B).astype(np.int32)
    values, _ = stream_samples(rng, times, D, lengths=lengths)  # garbage past lengths is fine
    b = int(rng.integers(0, B))
    n = int(lengths[b])
    if defect == "unsorted" and n > 1:
        i = int(rng.integers(0, n - 1))
        times[b, i] = times[b, i + 1] + np.float32(rng.uniform(0.01, 1.0))
    elif defect in ("nan", "inf", "-inf"):
        times[b, int(rng.integers(0, n))] = np.float32(defect)
    elif defect == "negative length":
        lengths[b] = -int(rng.integers(1, 3))
    elif defect == "long length":
        lengths[b] = S + int(rng.integers(1, 3))
    queries = queries_for(rng, times.astype(np.float64), lengths, T, True).astype(np.float32)
    t = times.astype(np.float64)
    in_len = np.arange(S)[None] < lengths[:, None]
    bad = {"lengths": ((lengths < 0) | (lengths > S)).any(),
           "non-finite": (in_len & ~np.isfinite(t)).any(),
           "non-decreasing": (in_len[:, 1:] & ~(t[:, 1:] >= t[:, :-1])).any()}
    err, (out, _) = _checked_resample(method)(values, times, queries, lengths)
    message = err.get()
    assert (message is not None) == any(bad.values()), (defect, message, bad)
    if message is not None:
        assert any(k in message for k, hit in bad.items() if hit), (defect, message)
    # Without validate the call runs; `valid` follows its definition whatever the order of
    # the times, and previous/nearest only ever return a valid sample (or 0 / NaN rows).
    fn = jitted(resample, method=method, out_of_range="clamp", return_valid=True)
    out2, valid2 = fn(values, times, queries, lengths=lengths)
    np.testing.assert_array_equal(np.asarray(out2), np.asarray(out))
    nc = np.clip(lengths, 0, S)
    t0 = t[np.arange(B), 0]
    tl = t[np.arange(B), np.maximum(nc - 1, 0)]
    q = queries.astype(np.float64)
    expect_valid = (nc[:, None] > 0) & (q >= t0[:, None]) & (q <= tl[:, None])
    np.testing.assert_array_equal(valid2, expect_valid)
    if not any(bad.values()):
        with np.errstate(all="ignore"):
            ref, _ = reference.resample(values, times, queries, lengths, method, "clamp")
        assert_close(out2, ref, f"{method} {defect}")
    elif method != "linear":
        out2 = np.asarray(out2)
        for bb in range(B):
            rows = np.concatenate([values[bb, :nc[bb]], np.zeros((1, D)), np.full((1, D), np.nan)])
            for row in out2[bb]:
                assert any(np.array_equal(row, r, equal_nan=True) for r in rows), (defect, row)


# -- align ---------------------------------------------------------------------------------
#: name -> (B, T, shared clock, concatenate, policies, streams); a stream is
#: (method, S, D, values dtype, offset, tolerance, window). Times sit on a 1/16 s grid and
#: queries on a 1/32 s grid, so offsets, tolerances and windows meet samples exactly.
ALIGN_TEMPLATES = {
    "mixed": (3, 10, False, False, ("clamp", "nan"), (
        ("linear", 8, 2, "float32", 0.0, None, None),
        ("nearest", 5, 1, "bfloat16", 0.0625, 0.1875, None),
        ("previous", 1, 3, "float16", -0.03125, 0.125, None),
        ("slerp", 6, 4, "float32", 0.0, 0.25, None),
        ("window_mean", 12, 3, "float32", 0.03125, 0.1875, 0.15625))),
    "mixed-concatenated": (2, 6, True, True, ("nan",), (
        ("previous", 9, 2, "bfloat16", 0.0, 0.0625, None),
        ("window_mean", 4, 1, "float32", 0.0, None, 0.0625),
        ("linear", 3, 2, "float32", -0.0625, None, None))),
    "empty-and-single": (2, 7, True, False, ("clamp", "nan"), (
        ("linear", 0, 2, "float32", 0.0, None, None),
        ("window_mean", 3, 1, "float16", 0.0, 0.0, 0.0625),
        ("nearest", 1, 2, "float32", 0.0, None, None))),
    "extrapolate": (2, 9, False, False, ("extrapolate",), (
        ("linear", 6, 3, "float32", 0.0625, 0.25, None),
        ("linear", 2, 1, "bfloat16", 0.0, None, None))),
    "no-episodes": (0, 4, False, False, ("clamp",), (
        ("previous", 5, 2, "float32", 0.0, None, None),)),
}


@st.composite
def align_cases(draw):
    name = draw(st.sampled_from(sorted(ALIGN_TEMPLATES)))
    B, T, shared, concatenate, policies, specs = ALIGN_TEMPLATES[name]
    policy = draw(st.sampled_from(policies))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    bad_values = draw(st.sampled_from([0.0, 0.0, 0.05, 0.3]))
    streams = {}
    for k, (method, S, D, dtype, offset, tolerance, window) in enumerate(specs):
        times = sorted_times(rng, B, S, "grid").astype(np.float32)
        lengths = rng.integers(-2, S + 3, B).astype(np.int32)
        values, _ = stream_samples(rng, times, D, dtype=np.float64,
                                   quaternions=method == "slerp", lengths=lengths)
        valid_rows = np.arange(S)[None, :, None] < np.clip(lengths, 0, S)[:, None, None]
        sprinkle(rng, values, bad_values, [np.nan] if method == "slerp" else None,
                 where=valid_rows)
        streams[f"s{k}_{method}"] = dict(values=values.astype(DTYPES[dtype]), times=times,
                                         lengths=lengths, method=method, offset=offset,
                                         tolerance=tolerance, window=window)
    q = rng.integers(-8, 44, (max(B, 1) if shared else B, T)) / 32.0
    if draw(st.booleans()):
        sprinkle(rng, q, 0.1)
    q = (q[0] if shared else q).astype(np.float32)
    return name, policy, concatenate, streams, q


def _align_static(arrays, queries, *, statics, out_of_range, concatenate):
    streams = {k: Stream(arrays[k]["values"], arrays[k]["times"], arrays[k]["lengths"],
                         **dict(meta)) for k, meta in statics}
    return align(streams, queries, out_of_range=out_of_range, concatenate=concatenate)


@given(align_cases())
@counted
def test_fuzz_align(case):
    name, policy, concatenate, streams, queries = case
    arrays = {k: {a: s[a] for a in ("values", "times", "lengths")} for k, s in streams.items()}
    # The metadata is static: a tuple of it keys the cached jitted function.
    statics = tuple((k, tuple((m, s[m]) for m in ("method", "offset", "tolerance", "window")))
                    for k, s in streams.items())
    fn = jitted(_align_static, statics=statics, out_of_range=policy, concatenate=concatenate)
    result = fn(arrays, queries)
    refs = {k: {**s, "values": as_f64(s["values"])} for k, s in streams.items()}
    with np.errstate(all="ignore"):
        ref = reference_align.align(refs, queries, out_of_range=policy)
    for k in result.names:
        values, valid, age = result[k]
        r_values, r_valid, r_age = ref[k]
        err = f"{name}/{policy} stream {k}"
        assert values.dtype == streams[k]["values"].dtype
        np.testing.assert_array_equal(valid, r_valid, err_msg="valid " + err)
        np.testing.assert_allclose(np.asarray(age), r_age.astype(np.float32), rtol=2e-6,
                                   atol=1e-7, err_msg="age " + err)
        assert_close(values, r_values, err)
    if concatenate:
        joined = np.concatenate([as_f64(result[k].values) for k in result.names], axis=-1)
        np.testing.assert_array_equal(as_f64(result.concatenated()), joined)
