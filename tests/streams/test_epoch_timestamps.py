"""Epoch timestamps off the numpy path are never silently wrong (the resolution rule).

sin(2 pi t) sampled 1000 times over 10 s at epoch ~1.7e9 s, queried at 50 instants.
Host float64 timestamps are converted to relative seconds and stay accurate; every
other path either raises (times known: eager, numpy, concrete arrays) or, under jit,
returns NaN / invalid for the affected episodes, and validate=True under checkify
reports it. Also: the rule at its boundary, and validate=True under jit without
checkify naming the op.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

from references import resample as reference
from references import align as reference_align
from jax_robocache import Stream, align, fuse_multimodal, relative_timestamps, resample
from jax_robocache.streams.timestamps import unresolved_episodes

EPOCH = 1.7e9
S, T = 1000, 50


@pytest.fixture
def signal(rng):
    times = EPOCH + np.sort(rng.uniform(0.0, 10.0, S))
    queries = EPOCH + rng.uniform(0.5, 9.5, T)
    values = np.sin(2 * np.pi * times)[:, None].astype(np.float32)
    return values, times, queries, np.sin(2 * np.pi * queries)


def test_host_float64_stays_accurate(signal):
    values, times, queries, truth = signal
    out = resample(values, times, queries)
    # Linear interpolation of a 1 Hz sine at ~100 Hz: |error| <= (2 pi)^2 h^2 / 8 with h the
    # largest gap; relative float32 seconds add ~1e-6.
    h = np.max(np.diff(times))
    assert np.max(np.abs(np.asarray(out)[:, 0] - truth)) <= (2 * np.pi) ** 2 * h ** 2 / 8 + 1e-4


@pytest.mark.parametrize("path", ["jnp arrays", "numpy float32"])
def test_known_epoch_times_raise_resample(signal, path):
    values, times, queries, _ = signal
    if path == "jnp arrays":
        t, q = jnp.asarray(times), jnp.asarray(queries)  # float32 without x64
    else:
        t, q = times.astype(np.float32), queries.astype(np.float32)
    with pytest.raises(ValueError, match=r"resample: times cannot be resolved in float32.*"
                                         r"relative_timestamps"):
        resample(values, t, q)


def test_known_epoch_times_raise_inside_jit(signal):
    """Numpy float32 epoch times closed over by a jitted function are known: an error."""
    values, times, queries, _ = signal
    t32 = times.astype(np.float32)
    with pytest.raises(ValueError, match="cannot be resolved"):
        jax.jit(lambda q: resample(values, t32, q))(queries.astype(np.float32))


def test_closed_over_device_epoch_times_raise_inside_jit(signal):
    """Device arrays closed over by a jitted function are known too (every operand concrete,
    the call inside an enclosing trace): resample and align raise, as eagerly."""
    values, times, queries, _ = signal
    v, t, q = (jnp.asarray(x.astype(np.float32)) for x in (values, times, queries))
    with pytest.raises(ValueError, match="cannot be resolved"):
        jax.jit(lambda: resample(v, t, q))()
    with pytest.raises(ValueError, match="cannot be resolved"):
        jax.jit(lambda: align({"a": Stream(v, t)}, q)["a"].values)()


@pytest.mark.parametrize("out_of_range", ["clamp", "nan", "extrapolate"])
def test_jit_of_numpy_epoch_times_is_nan(signal, out_of_range):
    """jax.jit casts numpy float64 to float32 before resample sees it: every query NaN."""
    values, times, queries, _ = signal
    fn = jax.jit(functools.partial(resample, return_valid=True, out_of_range=out_of_range))
    out, valid = fn(values, times, queries)
    assert np.isnan(np.asarray(out)).all()
    assert not np.asarray(valid).any()


def test_jit_flags_only_unresolved_episodes(signal, rng):
    """One epoch episode among relative ones: only its queries are NaN; the others match the
    float64 reference."""
    values, times, queries, _ = signal
    rel_t = np.sort(rng.uniform(0, 10, (2, S)), axis=-1)
    t = np.stack([rel_t[0], times, rel_t[1]]).astype(np.float32)
    q = np.stack([rng.uniform(0, 10, T), queries, rng.uniform(0, 10, T)]).astype(np.float32)
    v = np.broadcast_to(values, (3, S, 1))
    out, valid = jax.jit(functools.partial(resample, return_valid=True))(v, t, q)
    out, valid = np.asarray(out), np.asarray(valid)
    assert np.isnan(out[1]).all() and not valid[1].any()
    ref, ref_valid = reference.resample(v, t, q)
    np.testing.assert_array_equal(valid, ref_valid)
    np.testing.assert_allclose(out[[0, 2]], ref[[0, 2]], rtol=1e-5, atol=1e-6)


def test_validate_under_checkify_reports_it(signal):
    values, times, queries, _ = signal
    fn = jax.jit(functools.partial(resample, validate=True))
    err, _ = checkify.checkify(fn)(values, times, queries)
    with pytest.raises(checkify.JaxRuntimeError, match="resample: times cannot be resolved"):
        err.throw()
    rel_t, rel_q, _ = relative_timestamps(times, queries)
    err, out = checkify.checkify(fn)(values, rel_t, rel_q)
    assert err.get() is None
    np.testing.assert_allclose(out, resample(values, times, queries), atol=1e-5)


def test_align_known_epoch_times_raise(signal):
    values, times, queries, _ = signal
    with pytest.raises(ValueError, match=r"align: streams\['a'\].times cannot be resolved"):
        align({"a": Stream(values, jnp.asarray(times))}, jnp.asarray(queries))
    with pytest.raises(ValueError, match="cannot be resolved"):
        fuse_multimodal(values, times.astype(np.float32), values, times.astype(np.float32),
                        values, times.astype(np.float32), queries.astype(np.float32))


def test_align_under_jit_is_nan_for_the_unresolved_stream(signal, rng):
    values, times, queries, truth = signal
    rel = np.sort(rng.uniform(0, 10, S)).astype(np.float32)

    def run(t_epoch, q):  # stream "a" epoch (lost), stream "b" relative (fine)
        return align({"a": Stream(values, t_epoch), "b": Stream(values, rel, method="previous")},
                     q - np.float32(EPOCH) * 0, out_of_range="clamp")

    res = jax.jit(run)(times, queries)
    a = res["a"]
    assert np.isnan(np.asarray(a.values)).all() and not np.asarray(a.valid).any()
    assert np.isnan(np.asarray(a.age)).all()
    # Stream b is evaluated normally at the (rounded) queries: all after its range.
    ref = reference_align.align({"b": dict(values=values[None], times=rel[None],
                                           method="previous")},
                                np.asarray(queries, np.float32)[None])["b"]
    np.testing.assert_array_equal(np.asarray(res["b"].valid), ref[1][0])
    np.testing.assert_allclose(np.asarray(res["b"].values), ref[0][0], rtol=1e-6)
    fused = jax.jit(fuse_multimodal)(values, times, values, times, values, times, queries)
    assert np.isnan(np.asarray(fused)).all()


def test_align_validate(signal):
    values, times, queries, _ = signal
    fn = jax.jit(lambda v, t, q: align({"a": Stream(v, t)}, q, validate=True).concatenated())
    err, _ = checkify.checkify(fn)(values, times, queries)
    with pytest.raises(checkify.JaxRuntimeError, match=r"align: streams\['a'\].times cannot"):
        err.throw()
    bad = np.arange(8, dtype=np.float32)[::-1].copy()  # unsorted: eager validate raises
    with pytest.raises(Exception, match=r"align: streams\['x'\].times must be non-decreasing"):
        align({"x": Stream(np.ones((8, 1), np.float32), bad)}, bad, validate=True)
    with pytest.raises(Exception, match=r"streams\['x'\].lengths must lie in \[0, 8\]"):
        align({"x": Stream(np.ones((8, 1), np.float32), bad[::-1].copy(), lengths=9)}, bad,
              validate=True)
    err, _ = checkify.checkify(fn)(np.ones((8, 1), np.float32), bad, bad)
    with pytest.raises(checkify.JaxRuntimeError, match="non-decreasing"):
        err.throw()


@pytest.mark.parametrize("op", ["resample", "align"])
def test_validate_under_jit_without_checkify_names_the_op(op):
    t = np.arange(8, dtype=np.float32) * 0.1
    v = np.ones((8, 2), np.float32)
    if op == "resample":
        fn = jax.jit(lambda t: resample(v, t, t, validate=True))
    else:
        fn = jax.jit(lambda t: align({"s": Stream(v, t)}, t, validate=True).concatenated())
    with pytest.raises(ValueError, match=rf"(?s){op}\(validate=True\) under jax.jit.*"
                                         r"checkify.checkify\(jax.jit\(f\)\)"):
        fn(t)


# -- the rule itself -------------------------------------------------------------------
def _rule_cases():
    f32 = np.float32
    return [
        # (times, lengths, expected)
        (np.zeros(5, f32), None, False),  # all at zero: never (no magnitude)
        (np.full(5, 0.5, f32), None, False),  # one timestamp, small |t|: 1 MHz samples fit
        (np.full(5, 1000.0, f32), None, True),  # one timestamp at 1000 s: could be a collapse
        (np.full(5, 1000.0, f32), 1, False),  # one valid sample: nothing to resolve
        (np.array([EPOCH, EPOCH + 300], f32), None, True),  # 256 s apart in float32: 4 eps |t|
        (np.array([EPOCH, EPOCH + 1000], f32), None, False),  # 1024 s > 4 eps |t| = 811 s
        (np.array([np.nan, 1.0], f32), None, False),  # NaN: validate's business
        (np.array([-np.inf, 1.0], f32), None, False),
        (1e5 + np.arange(100, dtype=np.float64).astype(f32) * f32(0.01), None, True),  # 100 Hz
        (1e3 + np.arange(100, dtype=np.float64).astype(f32) * f32(0.01), None, False),
    ]


@pytest.mark.parametrize("case", range(len(_rule_cases())))
def test_resolution_rule(case):
    times, lengths, expected = _rule_cases()[case]
    n = times.shape[-1] if lengths is None else lengths
    assert reference.unresolved(times, n) == expected
    assert bool(unresolved_episodes(times, lengths, xp=np)) == expected
    assert bool(unresolved_episodes(jnp.asarray(times), lengths, xp=jnp)) == expected


def test_resolution_rule_boundary(rng):
    """Random float32 episodes near the boundary: the jnp rule, the numpy rule and the
    independent reference agree exactly (all compute in the time dtype)."""
    mags = 10.0 ** rng.uniform(-1, 9, 400)
    n = rng.integers(2, 20, 400)
    times = np.zeros((400, 20), np.float32)
    for b in range(400):
        gap = mags[b] * 2.0 ** -23 * 4 * rng.uniform(0.5, 1.5)
        times[b, :n[b]] = (mags[b] + gap * np.arange(n[b])).astype(np.float32)
    lengths = n.astype(np.int32)
    ref = np.array([reference.unresolved(times[b], n[b]) for b in range(400)])
    assert 0 < ref.sum() < 400  # both sides of the boundary
    np.testing.assert_array_equal(unresolved_episodes(times, lengths, xp=np), ref)
    np.testing.assert_array_equal(
        np.asarray(unresolved_episodes(jnp.asarray(times), jnp.asarray(lengths), xp=jnp)), ref)


@pytest.mark.parametrize("method", ["linear", "nearest", "previous"])
def test_unresolved_under_jit_on_every_platform(platform, method, rng):
    """The length sentinel reaches the CUDA kernel too: kernel == reference == twin."""
    B = 4
    t = np.sort(rng.uniform(0, 5, (B, 30)), axis=-1)
    t[1] += EPOCH  # episode 1 unresolved in float32
    t[3] = 1000.0  # episode 3: every sample at one timestamp far from zero
    t = t.astype(np.float32)
    q = (t[:, :1] + rng.uniform(-0.5, 5.5, (B, 12))).astype(np.float32)
    v = rng.normal(size=(B, 30, 3)).astype(np.float32)
    out, valid = jax.jit(functools.partial(resample, method=method, return_valid=True))(v, t, q)
    ref, ref_valid = reference.resample(v, t, q, None, method)
    np.testing.assert_array_equal(np.asarray(valid), ref_valid)
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5, atol=1e-5)
    assert np.isnan(np.asarray(out)[[1, 3]]).all()
    res = jax.jit(lambda v, t, q: align({"s": Stream(v, t, method=method)}, q))(v, t, q)
    ref_a = reference_align.align({"s": dict(values=v, times=t, method=method)}, q)["s"]
    np.testing.assert_array_equal(np.asarray(res["s"].valid), ref_a[1])
    np.testing.assert_allclose(np.asarray(res["s"].values), ref_a[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(res["s"].age), ref_a[2], rtol=1e-5, atol=1e-5)
