"""align against the independent float64 numpy reference, on CPU and (when present) GPU."""

from __future__ import annotations

import functools
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from references import align as reference_align
from exact import assert_identical
from conftest import device, gpu_available, rng_for
from jax_robocache import AlignResult, Stream, align, fuse_multimodal, resample
from jax_robocache._core import extension as _extension
from jax_robocache.demo.episode import sena_arrays
from jax_robocache.streams.align_cases import make_stream

DTYPES = {"float32": np.float32, "bfloat16": jnp.bfloat16, "float16": np.float16}
# Absolute tolerance relative to the largest |value|: output rounding of each dtype (float32:
# also the sequential float32 sum of a window of up to ~100 samples).
TOL = {"float32": 1e-5, "bfloat16": 8e-3, "float16": 1e-3}


def dtype_name(x) -> str:
    return jnp.dtype(x.dtype).name


def assert_close(out, ref, err=""):
    name = dtype_name(out)
    # the float64 reference rounded to the output dtype first: an extrapolated float16 value
    # beyond 65504 is inf in both
    ref = np.asarray(jnp.asarray(np.asarray(ref, np.float64).astype(jnp.dtype(out.dtype)),
                                 jnp.float32), np.float64)
    out = np.asarray(jnp.asarray(out, jnp.float32), np.float64)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref), err_msg="NaN pattern " + err)
    scale = max(float(np.nanmax(np.abs(ref), initial=1.0)), 1.0)
    np.testing.assert_allclose(np.nan_to_num(out), np.nan_to_num(ref), rtol=TOL[name],
                               atol=TOL[name] * scale, err_msg=err)


def assert_matches_reference(result, ref, err=""):
    for name in result.names:
        values, valid, age = result[name]
        r_values, r_valid, r_age = ref[name]
        np.testing.assert_array_equal(valid, r_valid, err_msg=f"valid of {name} {err}")
        np.testing.assert_array_equal(np.isinf(age), np.isinf(r_age), err_msg=f"age inf {name}")
        np.testing.assert_allclose(np.asarray(age), r_age.astype(np.float32), rtol=2e-6,
                                   atol=1e-7, err_msg=f"age of {name} {err}")
        assert age.dtype == jnp.float32 and valid.dtype == jnp.bool_
        assert_close(values, r_values, f"values of {name} {err}")


def make_queries(rng, B, T, hits=None):
    """[B, T] float32 over [-0.15, 1.15], with some exact sample times of ``hits`` [B, S]."""
    q = rng.uniform(-0.15, 1.15, (B, T))
    if hits is not None and T:
        k = rng.integers(0, T, max(T // 4, 1))
        q[:, k] = hits[:, rng.integers(0, max(hits.shape[1] // 2, 1), k.size)]
    return q.astype(np.float32)


def both(values, times, lengths=None, **meta):
    """The same stream for align (Stream) and for the reference (dict)."""
    return Stream(values, times, lengths, **meta), dict(values=values, times=times,
                                                        lengths=lengths, **meta)


def random_streams(rng, B, *, out_of_range):
    """One stream per method, random sizes, dtypes, offsets, tolerances and a window."""
    kinds = ["linear", "nearest", "previous", "slerp", "window_mean"]
    if out_of_range == "extrapolate":
        kinds = ["linear", "linear"]
    ours, refs = {}, {}
    for k, method in enumerate(kinds):
        S = int(rng.integers(2, 60))
        D = 4 if method == "slerp" else int(rng.integers(1, 12))
        dtype = list(DTYPES.values())[int(rng.integers(0, 3))] if method != "slerp" else np.float32
        values, times, lengths = make_stream(rng, B, S, D, dtype=dtype,
                                             quaternions=method == "slerp")
        meta = dict(method=method, offset=float(rng.choice([0.0, rng.uniform(-0.1, 0.1)])),
                    tolerance=float(rng.uniform(0.5, 3.0) / S) if rng.random() < 0.7 else None)
        if method == "window_mean":
            meta["window"] = float(rng.uniform(1.0, 6.0) / S)
        ours[f"{method}{k}"], refs[f"{method}{k}"] = both(values, times, lengths, **meta)
    return ours, refs


class AlignVariantsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_reference_with_and_without_jit(self):
        rng = rng_for(self.id())
        B, T = 4, 30
        streams, refs = {}, {}
        for name, method, dtype in (("near", "nearest", np.float32),
                                    ("mean", "window_mean", jnp.bfloat16)):
            values, times, lengths = make_stream(rng, B, int(rng.integers(2, 50)), 3, dtype=dtype)
            streams[name], refs[name] = both(values, times, lengths, method=method, offset=0.01,
                                             tolerance=0.05, window=0.1 if name == "mean" else None)
        queries = make_queries(rng, B, T, hits=refs["near"]["times"])
        out = self.variant(align)(streams, queries)
        assert isinstance(out, AlignResult)
        assert_matches_reference(out, reference_align.align(refs, queries))


@pytest.mark.parametrize("out_of_range", ["clamp", "nan", "extrapolate"])
def test_matches_reference(platform, rng, out_of_range):
    B, T = 6, 70
    streams, refs = random_streams(rng, B, out_of_range=out_of_range)
    queries = make_queries(rng, B, T, hits=next(iter(refs.values()))["times"])
    out = jax.jit(functools.partial(align, out_of_range=out_of_range))(streams, queries)
    ref = reference_align.align(refs, queries, out_of_range=out_of_range)
    assert_matches_reference(out, ref, out_of_range)
    for name in out.names:
        chex.assert_shape(out[name].values, (B, T, streams[name].values.shape[-1]))
        assert out[name].values.dtype == streams[name].values.dtype


@pytest.mark.parametrize("out_of_range", ["clamp", "nan"])
def test_shared_methods_equal_resample_bitwise(platform, rng, out_of_range):
    """No tolerance: align == resample (at q - offset) exactly, values and valid."""
    B, T = 4, 50
    streams = {}
    for method in ("linear", "nearest", "previous", "slerp"):
        values, times, lengths = make_stream(rng, B, int(rng.integers(1, 40)), 5,
                                             dtype=np.float32 if method == "slerp"
                                             else jnp.bfloat16, quaternions=method == "slerp")
        offset = 0.0 if method == "linear" else float(rng.uniform(-0.1, 0.1))
        streams[method] = Stream(values, times, lengths, method=method, offset=offset)
    queries = make_queries(rng, B, T, hits=streams["linear"].times)
    out = align(streams, queries, out_of_range=out_of_range)
    for name, s in streams.items():
        shifted = (queries - np.float32(s.offset)) if s.offset else queries
        expect, expect_valid = resample(s.values, s.times, shifted, lengths=s.lengths,
                                        method=s.method, out_of_range=out_of_range,
                                        return_valid=True)
        assert_identical(out[name].values, expect, err_msg=name)
        np.testing.assert_array_equal(out[name].valid, expect_valid, err_msg=name)


def test_dropout_tolerance(platform):
    """A 100 Hz stream with a 0.3 s dropout: tolerance flags exactly the queries it affects."""
    t = np.concatenate([np.arange(0, 0.5, 0.01), np.arange(0.8, 1.0001, 0.01)]).astype(np.float32)
    v = np.stack([np.sin(7 * t), t], axis=-1).astype(np.float32)[None]
    q = np.array([[0.205, 0.495, 0.52, 0.6, 0.795, 0.8, 0.805, 0.485, 1.1, -0.1]], np.float32)
    streams, refs = {}, {}
    for method in ("linear", "previous", "nearest", "window_mean"):
        streams[method], refs[method] = both(v, t[None], method=method, tolerance=0.05,
                                             window=0.035 if method == "window_mean" else None)
    for policy in ("clamp", "nan"):
        out = align(streams, q, out_of_range=policy)
        assert_matches_reference(out, reference_align.align(refs, q, out_of_range=policy), policy)
    out = align(streams, q)
    inside_gap = np.array([False, True, True, True, True, False, False, False, False, False])
    outside = np.array([False] * 8 + [True, True])
    # linear: the bracketing gap 0.3 s > 0.05 s inside the dropout only
    np.testing.assert_array_equal(out["linear"].valid[0], ~inside_gap & ~outside)
    # previous: q - t_i > 0.05 from 0.55 s on (0.52 is still within tolerance)
    np.testing.assert_array_equal(out["previous"].valid[0],
                                  ~outside & ~np.isin(np.arange(10), [3, 4]))
    # nearest: more than 0.05 s from any sample only around the middle of the gap
    np.testing.assert_array_equal(out["nearest"].valid[0], ~outside & (np.arange(10) != 3))
    # clamp keeps the values (here the interpolation across the gap), nan blanks them
    assert np.isfinite(np.asarray(out["linear"].values)).all()
    nan_out = align(streams, q, out_of_range="nan")
    np.testing.assert_array_equal(np.isnan(np.asarray(nan_out["linear"].values[0, :, 0])),
                                  inside_gap | outside)
    np.testing.assert_allclose(out["previous"].age[0, :8],
                               [0.005, 0.005, 0.03, 0.11, 0.305, 0.0, 0.005, 0.005], atol=2e-6)


def _up(x):
    return np.nextafter(np.float32(x), np.float32(np.inf))


def _down(x):
    return np.nextafter(np.float32(x), np.float32(-np.inf))


def test_tolerance_and_window_edges_exactly(platform):
    """Distances exactly equal to the tolerance are valid, one float32 ulp more is not; a sample
    exactly q - window is outside the window. Dyadic times: every distance below is exact."""
    tol = 0.125
    cases = {  # name: (sample times, Stream metadata, [(query, valid)])
        "previous": ([0.0, 0.25], dict(method="previous"),
                     [(0.125, True), (_up(0.125), False), (0.25, True)]),
        "nearest": ([0.0, 1.0], dict(method="nearest"),
                    [(0.125, True), (_up(0.125), False), (0.875, True), (_down(0.875), False)]),
        # linear: gaps 0.25 (> tol) then 0.125 (== tol); a query on a sample uses it alone
        "linear": ([0.0, 0.25, 0.375], dict(method="linear"),
                   [(0.125, False), (0.25, True), (_up(0.25), True), (0.3125, True),
                    (_down(0.25), False)]),
        # window_mean: q - t_latest against the tolerance, as for previous
        "window_mean": ([0.0, 0.25, 1.0], dict(method="window_mean", window=0.5),
                        [(0.375, True), (_up(0.375), False)]),
    }
    for name, (times, meta, queries) in cases.items():
        t = np.asarray(times, np.float32)[None]
        v = (np.arange(t.size, dtype=np.float32)[:, None] + 1)[None]  # 1, 2, 3
        q = np.asarray([x for x, _ in queries], np.float32)[None]
        stream, ref = both(v, t, tolerance=tol, **meta)
        for policy in ("clamp", "nan"):
            out = align({name: stream}, q, out_of_range=policy)
            np.testing.assert_array_equal(np.asarray(out[name].valid[0]),
                                          [ok for _, ok in queries], err_msg=f"{name} {policy}")
            assert_matches_reference(out, reference_align.align({name: ref}, q, policy), name)
            if policy == "nan":
                np.testing.assert_array_equal(np.isnan(np.asarray(out[name].values[0, :, 0])),
                                              [not ok for _, ok in queries], err_msg=name)
    # window (q - w, q]: with w = 0.25 a sample at exactly q - w is out, one at q is in
    t = np.asarray([[0.0, 0.25, 0.5, 1.0]], np.float32)
    v = np.asarray([[[1.0], [2.0], [4.0], [8.0]]], np.float32)
    q = np.asarray([[0.5, _up(0.5), _down(0.5), 0.25]], np.float32)
    out = align({"w": Stream(v, t, method="window_mean", window=0.25)}, q)
    np.testing.assert_array_equal(np.asarray(out["w"].values[0, :, 0]), [4.0, 4.0, 2.0, 2.0])
    np.testing.assert_array_equal(np.asarray(out["w"].valid[0]), [True, True, True, True])


def test_window_mean_decimation(platform, rng):
    """1 kHz jittered samples averaged onto 10 Hz, an empty window in a dropout, NaN locality."""
    B, S = 3, 1500
    t = np.cumsum(rng.uniform(0.5e-3, 1.5e-3, (B, S)), axis=1)
    t[:, 700:] += 0.25  # dropout: windows inside it are empty
    t = t.astype(np.float32)
    v = rng.normal(size=(B, S, 6)).astype(np.float32)
    v[1, 300, 2] = np.nan
    q = np.arange(0.0, 1.8, 0.1, dtype=np.float32)
    lengths = np.array([S, 1000, 900], np.int32)
    stream, ref = both(v, t, lengths, method="window_mean", window=0.1)
    half, ref_half = both(v, t, lengths, method="window_mean", window=0.05, offset=-0.02)
    out = align({"full": stream, "half": half}, q)
    expect = reference_align.align({"full": ref, "half": ref_half}, q)
    assert_matches_reference(out, expect)
    nan_rows = np.isnan(np.asarray(out["full"].values[1]))
    assert nan_rows[:, 2].sum() == 1 and not nan_rows[:, [0, 1, 3, 4, 5]].any()
    assert not np.asarray(out["full"].valid[0]).all()  # the dropout leaves empty windows


@pytest.mark.parametrize("S", [11904, 11905])
def test_long_episodes_at_the_staging_limit(platform, rng, S):
    """float32 episodes whose timestamps just fit a block's shared memory next to its plans
    (11904 samples: the kernel stages them) and one sample more (it searches global memory),
    on uneven clocks (a dropout, a burst) so that a tile's queries fall far from where even
    spacing would put them, with queries spread over many tiles."""
    B, T = 2, 300
    gaps = rng.uniform(0.5e-3, 1.5e-3, (B, S))
    gaps[:, S // 3] += 2.0  # a dropout
    gaps[:, S // 2:S // 2 + 2000] *= 0.01  # a burst
    t = np.cumsum(gaps, axis=1).astype(np.float32)
    v = rng.normal(size=(B, S, 5)).astype(np.float32)
    lengths = np.array([S, S - 7], np.int32)
    q = np.sort(rng.uniform(-0.1, float(t[:, -1].max()) + 0.1, (B, T)), axis=1)
    q[:, ::7] = t[:, rng.integers(0, S - 7, q[:, ::7].shape[1])]  # exact hits
    q = q.astype(np.float32)
    streams, refs = {}, {}
    for name, method, meta in (("lin", "linear", {}), ("near", "nearest", {}),
                               ("mean", "window_mean", {"window": 0.05})):
        streams[name], refs[name] = both(v, t, lengths, method=method, **meta)
    out = jax.jit(align)(streams, q)
    assert_matches_reference(out, reference_align.align(refs, q))


def test_ragged_empty_and_degenerate_sizes(platform, rng):
    """lengths 0/1/S/out of range, a stream with S = 0, T = 0 and B = 0."""
    B, T = 4, 12
    v, t, _ = make_stream(rng, B, 9, 3, ragged=False)
    lengths = np.array([0, 1, 9, 42], np.int32)
    empty = Stream(np.zeros((B, 0, 2), np.float32), np.zeros((B, 0), np.float32))
    streams = {"ragged": Stream(v, t, lengths, method="previous", tolerance=0.2),
               "window": Stream(v, t, lengths, method="window_mean", window=0.3),
               "empty": empty}
    refs = {"ragged": dict(values=v, times=t, lengths=lengths, method="previous", tolerance=0.2),
            "window": dict(values=v, times=t, lengths=lengths, method="window_mean", window=0.3),
            "empty": dict(values=empty.values, times=empty.times)}
    q = make_queries(rng, B, T)
    q[0, 0] = np.nan
    for policy in ("clamp", "nan"):
        out = align(streams, q, out_of_range=policy)
        assert_matches_reference(out, reference_align.align(refs, q, out_of_range=policy),
                                 policy)
    out = align(streams, q)
    np.testing.assert_array_equal(out["empty"].values[:, 1:], 0.0)  # [0, 0]: the NaN query
    assert np.isnan(np.asarray(out["empty"].values[0, 0])).all()
    assert np.isinf(np.asarray(out["empty"].age[:, 1:])).all() and np.isnan(out["empty"].age[0, 0])
    assert not np.asarray(out["ragged"].valid[0]).any()
    assert out.concatenated().shape == (B, T, 3 + 2 + 3)
    no_queries = align(streams, q[:, :0])
    chex.assert_shape(no_queries.concatenated(), (B, 0, 8))
    no_episodes = align({k: Stream(s.values[:0], s.times[:0],
                                   None if s.lengths is None else s.lengths[:0],
                                   method=s.method, window=s.window, tolerance=s.tolerance)
                         for k, s in streams.items()}, q[:0])
    chex.assert_shape(no_episodes["window"].values, (0, T, 3))


def test_age_semantics(platform):
    t = np.array([[0.0, 0.125, 0.125, 0.5]], np.float32)  # dyadic: every step below is exact
    v = np.arange(8, dtype=np.float32).reshape(1, 4, 2)
    q = np.array([[-0.5, 0.0, 0.0625, 0.125, 0.375, 0.5, 2.0, np.nan]], np.float32)
    out = align({"s": Stream(v, t, offset=0.25)}, q + np.float32(0.25))
    age = np.asarray(out["s"].age[0])
    np.testing.assert_array_equal(age[1:7], [0.0, 0.0625, 0.0, 0.25, 0.0, 1.5])
    assert np.isposinf(age[0]) and np.isnan(age[7])
    out = align({"s": Stream(v, t, lengths=np.array([0]))}, q)
    assert np.isposinf(np.asarray(out["s"].age[0, :7])).all()


@pytest.mark.parametrize("unit_int", [False, True])
def test_epoch_timestamps_through_helper(platform, rng, unit_int):
    """Streams at 30 Hz / 500 Hz / 1 kHz with epoch ~1.7e9 s stamps, one shared origin."""
    base = 1_700_000_000_000_000_000
    B, T = 2, 80
    stamps, values, refs = {}, {}, {}
    for name, rate, D in (("camera", 30, 3), ("joints", 500, 2), ("force", 1000, 1)):
        S = int(2 * rate)
        ns = base + np.cumsum(rng.integers(int(0.9e9 / rate), int(1.1e9 / rate), (B, S)), axis=1)
        ns += rng.integers(0, 50_000_000, (B, 1))  # streams start at different instants
        stamps[name] = ns
        values[name] = np.sin(np.linspace(0, 30, S) * (1 + np.arange(D))[:, None]).T[None]
        values[name] = np.broadcast_to(values[name], (B, S, D)).astype(np.float32)
    q_ns = base + rng.integers(60_000_000, 1_900_000_000, (B, T))
    origin = np.minimum.reduce([s[:, 0] for s in stamps.values()])[:, None]
    for name in stamps:  # the reference in exact integer-relative float64 seconds
        refs[name] = dict(values=values[name], times=(stamps[name] - origin) * 1e-9,
                          method="linear", offset=0.004 if name == "force" else 0.0)
    conv = (lambda x: x) if unit_int else (lambda x: x.astype(np.float64) * 1e-9)
    streams = {n: Stream(values[n], conv(stamps[n]), offset=r["offset"]) for n, r in refs.items()}
    out = align(streams, conv(q_ns))
    q_rel = (q_ns - origin) * 1e-9
    ref = reference_align.align(refs, q_rel, time_dtype=np.float64)
    for name in refs:
        np.testing.assert_allclose(np.asarray(out[name].values), ref[name][0], atol=2e-4)
        # valid and age jump where q - offset lies within float32 rounding (~1.2e-7 s at
        # 1-2 s) of a sample time: the relative float32 query may land on either side of it.
        gap = np.abs((q_rel - refs[name]["offset"])[:, :, None] - refs[name]["times"][:, None])
        far = gap.min(axis=-1) > 5e-7
        np.testing.assert_array_equal(np.asarray(out[name].valid)[far], ref[name][1][far])
        np.testing.assert_allclose(np.asarray(out[name].age)[far], ref[name][2][far], atol=2e-6)
    # the naive float32 cast cannot be resolved: refused (tests/streams/test_epoch_timestamps.py)
    naive = {n: Stream(values[n], conv(stamps[n]).astype(np.float32)) for n in refs}
    with pytest.raises(ValueError, match="cannot be resolved in float32"):
        align(naive, conv(q_ns).astype(np.float32))
    with pytest.raises(TypeError, match=r"different dtypes \(streams\[.a.\]\.times "
                       r"(int64|float64), streams\[.b.\]\.times float32"):
        align({"a": streams["camera"], "b": Stream(values["joints"], np.zeros((B, 1000),
                                                                          np.float32))},
              conv(q_ns))


def test_vmap_jit_and_pytrees(platform, rng):
    B, T = 3, 16
    va, ta, la = make_stream(rng, B, 20, 3)
    vb, tb, lb = make_stream(rng, B, 50, 2, dtype=jnp.bfloat16)
    q = make_queries(rng, B, T)
    streams = {"a": Stream(va, ta, la, method="nearest", tolerance=0.05),
               "b": Stream(vb, tb, lb, method="window_mean", window=0.08, offset=0.01)}
    batched = jax.jit(align)(streams, q)
    per_episode = jax.vmap(align)(streams, q)  # Stream pytrees mapped over their leaves
    looped = [align({k: Stream(s.values[b], s.times[b], s.lengths[b], s.method, s.offset,
                               s.tolerance, s.window) for k, s in streams.items()}, q[b])
              for b in range(B)]
    for name in streams:
        for field in range(3):
            assert_identical(per_episode[name][field], batched[name][field])
            assert_identical(np.stack([np.asarray(r[name][field]) for r in looped]),
                             batched[name][field])
    # one shared clock [T] and times shared by all episodes, leading dims broadcast
    shared = align({"a": Stream(va[:, None], ta[0])}, q[0])
    chex.assert_shape(shared["a"].values, (B, 1, T, 3))
    leaves = jax.tree_util.tree_leaves(batched)
    assert len(leaves) == 6
    doubled = jax.tree_util.tree_map(lambda x: x, batched)
    assert doubled.names == ("a", "b")


def test_grads(platform, rng):
    """Gradients w.r.t. every stream's values, and the query times through a linear stream."""
    B, T = 2, 9
    t = np.cumsum(rng.uniform(0.05, 0.15, (B, 12)), axis=1).astype(np.float32)
    i = rng.integers(0, 11, (B, T))
    frac = rng.uniform(0.2, 0.8, (B, T))
    t64 = t.astype(np.float64)
    q = (np.take_along_axis(t64, i, 1) * (1 - frac) + np.take_along_axis(t64, i + 1, 1) * frac)
    q = q.astype(np.float32)  # strictly inside segments: derivatives are constant nearby
    v1, v2, v3 = (rng.normal(size=(B, 12, d)).astype(np.float32) for d in (3, 2, 4))

    def f(v1, v2, v3):
        out = align({"lin": Stream(v1, t, tolerance=0.2), "prev": Stream(v2, t, method="previous"),
                     "win": Stream(v3, t, method="window_mean", window=0.25)}, q)
        return out.concatenated()

    check_grads(jax.jit(f), (v1, v2, v3), order=1, modes=("fwd", "rev"), atol=2e-2, rtol=2e-2)

    def g(q):  # a linear stream and the age are smooth in q between samples
        out = align({"lin": Stream(v1, t), "prev": Stream(v2, t, method="previous")}, q)
        return out["lin"].values, out["prev"].age

    check_grads(jax.jit(g), (q,), order=1, modes=("fwd", "rev"), eps=1e-4, atol=3e-2, rtol=3e-2)
    dq = jax.jit(jax.grad(lambda q: align({"lin": Stream(v1, t)}, q).concatenated().sum()))(q)
    slope = (np.take_along_axis(v1.sum(-1), i + 1, 1) - np.take_along_axis(v1.sum(-1), i, 1)) / (
        np.take_along_axis(t64, i + 1, 1) - np.take_along_axis(t64, i, 1))
    np.testing.assert_allclose(np.asarray(dq), slope, rtol=1e-3, atol=1e-3)


def test_trace_time_errors():
    v = np.zeros((2, 5, 3), np.float32)
    t = np.zeros((2, 5), np.float32)
    q = np.zeros((2, 4), np.float32)
    ok = Stream(v, t)
    cases = [
        (ValueError, "empty mapping", lambda: align({}, q)),
        (TypeError, "mapping", lambda: align([ok], q)),
        (TypeError, "Stream", lambda: align({"a": (v, t)}, q)),
        (ValueError, r"streams\['a'\].method", lambda: align({"a": Stream(v, t, method="cubic")},
                                                             q)),
        (ValueError, "no window", lambda: align({"a": Stream(v, t, method="window_mean")}, q)),
        (ValueError, "window must be > 0",
         lambda: align({"a": Stream(v, t, method="window_mean", window=0.0)}, q)),
        (ValueError, "only used by", lambda: align({"a": Stream(v, t, window=0.1)}, q)),
        (ValueError, "quaternion", lambda: align({"a": Stream(v, t, method="slerp")}, q)),
        (ValueError, "leading", lambda: align({"a": ok, "b": Stream(v[:1].repeat(3, 0),
                                                                     t[:1].repeat(3, 0))}, q)),
        (ValueError, r"streams\['b'\].times", lambda: align({"a": ok, "b": Stream(v, t[:, :4])},
                                                            q)),
        (ValueError, "tolerance", lambda: align({"a": Stream(v, t, tolerance=-1.0)}, q)),
        (ValueError, "extrapolate",
         lambda: align({"a": ok, "b": Stream(v, t, method="previous")}, q,
                       out_of_range="extrapolate")),
        (ValueError, "out_of_range", lambda: align({"a": ok}, q, out_of_range="wrap")),
        (TypeError, r"streams\['a'\].values", lambda: align({"a": Stream(v.astype(int), t)}, q)),
        (TypeError, "query_times", lambda: align({"a": ok}, jnp.zeros((2, 4), jnp.float16))),
        (ValueError, "at most 16", lambda: align({str(k): ok for k in range(17)}, q)),
        (ValueError, "order names unknown", lambda: align({"a": ok}, q).concatenated(["zz"])),
    ]
    for error, match, call in cases:
        with pytest.raises(error, match=match):
            call()
    with pytest.raises(ValueError, match="quaternion"):  # under jit too
        jax.jit(lambda v: align({"a": Stream(v, t, method="slerp")}, q))(v)


def test_errors_name_the_real_mistake():
    """A scalar signal without its feature axis, and a float64 numpy clock with float32 times."""
    t = np.sort(np.random.default_rng(0).uniform(0, 1, (4, 100)), axis=-1).astype(np.float32)
    v = np.sin(t)  # [B, S]: one feature, but no feature axis
    hint = r"trailing feature axis.*streams\['a'\]\.values\[\.\.\., None\]"
    with pytest.raises(ValueError, match=hint):
        align({"a": Stream(v, t)}, t[:, :5])
    with pytest.raises(ValueError, match=hint.replace("'a'", "'force'")):
        fuse_multimodal(v[..., None], t, v[..., None], t, v, t, t[:, :5])
    with pytest.raises(ValueError, match=r"streams\['a'\]\.values\[\.\.\., None\]"):
        align({"a": Stream(v[0], t[0])}, t[0, :5])  # [S]: rank 1
    clock = np.linspace(0.05, 0.5, 46)  # float64, numpy's default
    with pytest.raises(TypeError, match=r"different dtypes \(streams\['a'\]\.times float32, "
                       r"query_times float64\).*astype\(np.float32\)"):
        align({"a": Stream(v[..., None], t)}, clock)
    assert align({"a": Stream(v[..., None], t)}, clock.astype(np.float32))["a"].values.shape == \
        (4, 46, 1)


def dead_reckoning(increments):
    """Robot-frame odometry increments (dx, dy, dphi) [N, 3] -> world poses (x, y, phi) float32."""
    pose, poses = np.zeros(3), []
    for dx, dy, dphi in increments.astype(np.float64):
        c, s = np.cos(pose[2]), np.sin(pose[2])
        pose = pose + [c * dx - s * dy, s * dx + c * dy, dphi]
        poses.append(pose)
    return np.asarray(poses, np.float32)


def test_real_recording_sena(platform):
    """MRPT 'sena' loop: 4 Hz laser scans (with a 0.65 s dropout) and odometry onto 10 Hz."""
    data = sena_arrays()  # the demo's recording (jax_robocache/demo/data)
    clock = np.arange(data["odo_t"][0], data["scan_t"][-1] + 0.3, 0.1)  # float64 epoch seconds
    streams = {"scan": Stream(data["ranges"], data["scan_t"], method="previous", tolerance=0.4),
               "odo": Stream(dead_reckoning(data["odo_inc"]), data["odo_t"])}
    out = align(streams, clock, out_of_range="nan")
    origin = min(data["scan_t"][0], data["odo_t"][0])
    refs = {"scan": dict(values=data["ranges"], times=data["scan_t"] - origin, method="previous",
                         tolerance=0.4),
            "odo": dict(values=dead_reckoning(data["odo_inc"]), times=data["odo_t"] - origin)}
    ref = reference_align.align(
        {k: dict(r, values=r["values"][None], times=r["times"][None]) for k, r in refs.items()},
        (clock - origin)[None], out_of_range="nan", time_dtype=np.float64)
    for name in refs:
        np.testing.assert_array_equal(out[name].valid, ref[name][1][0], err_msg=name)
        np.testing.assert_allclose(np.asarray(out[name].values), ref[name][0][0], atol=2e-4,
                                   err_msg=name)
        np.testing.assert_allclose(np.asarray(out[name].age), ref[name][2][0], atol=1e-4)
    scan_valid = np.asarray(out["scan"].valid)
    gaps = np.diff(data["scan_t"])  # 19 scan gaps exceed 0.4 s (the longest is 0.65 s)
    stale = (clock[10:-5, None] - data["scan_t"][None, :-1] > 0.4) & (
        clock[10:-5, None] < data["scan_t"][None, 1:])
    np.testing.assert_array_equal(~scan_valid[10:-5], stale.any(axis=1))
    assert 0 < (~scan_valid[10:-5]).sum() <= (gaps > 0.4).sum() * 3
    assert out.concatenated().shape == (len(clock), 361 + 3)


def test_fuse_multimodal(platform, rng):
    B, T = 3, 25
    vision = make_stream(rng, B, 15, 16, dtype=jnp.bfloat16, ragged=False)[:2]
    proprio = make_stream(rng, B, 60, 7, ragged=False)[:2]
    force = make_stream(rng, B, 120, 6, ragged=False)[:2]
    q = make_queries(rng, B, T)
    out = jax.jit(fuse_multimodal)(*vision, *proprio, *force, q)
    assert out.shape == (B, T, 16 + 7 + 6) and out.dtype == jnp.float32
    refs = {n: dict(values=s[0], times=s[1]) for n, s in
            zip(("vision", "proprio", "force"), (vision, proprio, force))}
    ref = reference_align.align(refs, q)
    expect = np.concatenate([ref[n][0] for n in ("vision", "proprio", "force")], axis=-1)
    assert_close(out[..., :16].astype(jnp.bfloat16), expect[..., :16], "vision")
    assert_close(out[..., 16:], expect[..., 16:], "proprio, force")
    # the kernel's concatenation equals concatenating the per-stream outputs
    per_stream = align({n: Stream(*s) for n, s in zip(("vision", "proprio", "force"),
                                                       (vision, proprio, force))}, q)
    assert_identical(out, per_stream.concatenated(("vision", "proprio", "force")))


def test_concatenate_in_kernel(platform, rng):
    """concatenate=order: one buffer written at column offsets, bf16/f16 widened to f32."""
    B, T = 3, 40
    parts = {"img": (jnp.bfloat16, 8, "linear"), "joint": (np.float32, 3, "previous"),
             "ft": (np.float16, 4, "window_mean"), "quat": (np.float32, 4, "slerp")}
    streams = {}
    for name, (dtype, D, method) in parts.items():
        v, t, n = make_stream(rng, B, int(rng.integers(5, 40)), D, dtype=dtype,
                              quaternions=method == "slerp")
        streams[name] = Stream(v, t, n, method=method, tolerance=0.08,
                               window=0.1 if method == "window_mean" else None)
    q = make_queries(rng, B, T)
    order = ("ft", "img", "quat", "joint")
    fused = align(streams, q, out_of_range="nan", concatenate=order)
    plain = align(streams, q, out_of_range="nan")
    assert fused.concatenated().dtype == jnp.float32 and fused.concat_order == order
    assert_identical(fused.concatenated(), plain.concatenated(order))
    for name in streams:
        for a, b in zip(fused[name], plain[name]):
            assert a.dtype == b.dtype
            assert_identical(a, b)
    assert_identical(fused.concatenated(sorted(streams)), plain.concatenated())
    assert align({"b": streams["joint"], "a": streams["ft"]}, q,
                 concatenate=True).concat_order == ("a", "b")
    with pytest.raises(ValueError, match="every stream exactly once"):
        align(streams, q, concatenate=("img",))


def _assert_out_dtype_rounds_once(streams, q, out_dtype, order):
    """align with out_dtype (jitted) equals numpy's rounding of align without it, per stream
    (values; valid and age unchanged) and concatenated, without and with ``order``."""
    want = jnp.dtype(out_dtype)
    for concatenate in (False, order):
        plain = align(streams, q, out_of_range="nan", concatenate=concatenate)
        cast = jax.jit(lambda s, q: align(s, q, out_of_range="nan", concatenate=concatenate,
                                          out_dtype=out_dtype))(streams, q)
        for name in streams:
            assert cast[name].values.dtype == want, (name, concatenate)
            rounded = np.asarray(plain[name].values).astype(np.float32).astype(want)
            assert_identical(cast[name].values, rounded, f"{name} {concatenate}")
            assert_identical(cast[name].valid, plain[name].valid)
            assert_identical(cast[name].age, plain[name].age)
        assert cast.concatenated().dtype == want
        assert_identical(cast.concatenated(), np.concatenate(
            [np.asarray(plain[n].values).astype(np.float32).astype(want)
             for n in cast.concat_order or cast.names], axis=-1))


@pytest.mark.parametrize("out_dtype", [jnp.bfloat16, np.float16, "float32"])
def test_out_dtype(platform, rng, out_dtype):
    """out_dtype: every values output and the concatenation in one dtype, each stream's
    result rounded once from what align returns without it (numpy does the rounding)."""
    B, T = 2, 30
    parts = {"img": (jnp.bfloat16, 8, "linear"), "joint": (np.float32, 3, "previous"),
             "ft": (np.float32, 4, "window_mean"), "grip": (np.float16, 2, "nearest")}
    streams = {}
    for name, (dtype, D, method) in parts.items():
        v, t, n = make_stream(rng, B, int(rng.integers(5, 40)), D, dtype=dtype)
        streams[name] = Stream(v, t, n, method=method, tolerance=0.08,
                               window=0.1 if method == "window_mean" else None)
    q = make_queries(rng, B, T)
    _assert_out_dtype_rounds_once(streams, q, out_dtype, ("joint", "img", "grip", "ft"))
    with pytest.raises(TypeError, match="out_dtype must be one of"):
        align(streams, q, out_dtype=np.int32)
    with pytest.raises(TypeError, match="out_dtype must be a float dtype"):
        align(streams, q, out_dtype="not-a-dtype")


@pytest.mark.parametrize("out_dtype", [jnp.bfloat16, np.float16])
def test_out_dtype_wide_float32_rows(platform, rng, out_dtype):
    """float32 streams whose rows are whole 16-byte vectors (D = 8 linear, D = 16 window_mean)
    and a slerp stream, each alone and concatenated so that every column starts on a multiple
    of 8 elements: the kernel's vectorised narrowing stores, not only its scalar ones."""
    B, T = 3, 70
    parts = {"lin8": (8, "linear"), "wm16": (16, "window_mean"), "quat": (4, "slerp")}
    streams = {}
    for name, (D, method) in parts.items():
        v, t, n = make_stream(rng, B, int(rng.integers(20, 60)), D, dtype=np.float32,
                              quaternions=method == "slerp")
        streams[name] = Stream(v, t, n, method=method, tolerance=0.1,
                               window=0.05 if method == "window_mean" else None)
    q = make_queries(rng, B, T)
    _assert_out_dtype_rounds_once(streams, q, out_dtype, ("wm16", "lin8", "quat"))
    want = jnp.dtype(out_dtype)
    # fuse_multimodal, the benchmark's bfloat16 use: three float32 streams, one dtype out
    (v1, t1, _), (v2, t2, _), (v3, t3, _) = (
        make_stream(rng, B, 40, D, dtype=np.float32, ragged=False) for D in (16, 8, 8))
    fused = jax.jit(lambda *a: fuse_multimodal(*a, out_dtype=out_dtype))(v1, t1, v2, t2, v3,
                                                                         t3, q)
    plain = fuse_multimodal(v1, t1, v2, t2, v3, t3, q)
    assert_identical(fused, np.asarray(plain).astype(want))


@pytest.mark.parametrize("out_dtype", [jnp.bfloat16, np.float16])
def test_out_dtype_eight_byte_rows(platform, rng, out_dtype):
    """16-bit output rows whose width in bytes is a multiple of 8 but not 16 (the benchmark's
    bfloat16 fusion: 532 columns, 1064-byte rows): the kernel takes half-width vectors there;
    the values must still equal numpy's rounding of the float32 result."""
    B, T = 3, 37
    q = make_queries(rng, B, T)
    parts = {"a": (jnp.bfloat16, 16, "linear"), "b": (jnp.bfloat16, 8, "previous"),
             "c": (np.float32, 4, "window_mean")}   # 28 columns: 56-byte rows
    streams = {}
    for name, (dtype, D, method) in parts.items():
        v, t, n = make_stream(rng, B, int(rng.integers(20, 60)), D, dtype=dtype)
        streams[name] = Stream(v, t, n, method=method,
                               window=0.05 if method == "window_mean" else None)
    _assert_out_dtype_rounds_once(streams, q, out_dtype, ("a", "b", "c"))
    # fuse_multimodal with the benchmark's layout, narrower: bfloat16 vision, float32 proprio
    # and force, 64 + 14 + 6 = 84 columns (168-byte rows)
    (v1, t1, _), (v2, t2, _), (v3, t3, _) = (
        make_stream(rng, B, S, D, dtype=dtype, ragged=False)
        for S, D, dtype in ((15, 64, jnp.bfloat16), (250, 14, np.float32),
                            (500, 6, np.float32)))
    fused = jax.jit(lambda *a: fuse_multimodal(*a, out_dtype=out_dtype))(v1, t1, v2, t2, v3,
                                                                         t3, q)
    plain = fuse_multimodal(v1, t1, v2, t2, v3, t3, q)
    assert_identical(fused, np.asarray(plain).astype(np.float32).astype(jnp.dtype(out_dtype)))


def test_grid_aligned_window_edges_keep_both_roundings(platform, rng):
    """A 1 kHz clock and queries on it built with constants inside the same jit: the window's
    lower edge is fl(fl(q - offset) - w) as stated, not XLA's folded q - (offset + w), so
    samples exactly on an edge are in or out as the reference says."""
    S, B, T = 400, 2, 96
    t = np.broadcast_to((np.arange(S) / 1000.0).astype(np.float32), (B, S)).copy()
    v = rng.normal(size=(B, S, 3)).astype(np.float32)
    steps = rng.integers(20, 380, (B, T))
    grid = (steps / 1000.0).astype(np.float32)
    streams = {"w": Stream(v, t, method="window_mean", window=0.003, offset=0.001),
               "p": Stream(v, t, method="previous", offset=0.002)}
    out = jax.jit(lambda g: align(streams, g + jnp.float32(0.001)))(grid)
    q = (grid + np.float32(0.001)).astype(np.float32)
    ref = reference_align.align({"w": dict(values=v, times=t, method="window_mean",
                                           window=0.003, offset=0.001),
                                 "p": dict(values=v, times=t, method="previous", offset=0.002)},
                                q)
    for name in ("w", "p"):
        np.testing.assert_array_equal(out[name].valid, ref[name][1], err_msg=name)
        np.testing.assert_allclose(np.asarray(out[name].values), ref[name][0], rtol=2e-6,
                                   atol=2e-6, err_msg=name)


def test_out_dtype_lowers_to_the_kernels_own_output(rng):
    """Lowered for CUDA (needs the compiled kernels, not a GPU): with out_dtype the custom
    call itself returns the rows in that dtype (half the bytes written for bfloat16), so no
    conversion of the kernel's float32 rows follows it."""
    if not _extension.has_target("robocache_align"):
        pytest.skip("CUDA kernels not compiled in: " + (_extension.STATUS.reason or "no target"))
    v, t, n = make_stream(rng, 2, 30, 6)
    streams = {"a": Stream(v, t, n), "b": Stream(v[..., :2].astype(jnp.bfloat16), t, n)}
    q = make_queries(rng, 2, 10)
    for concatenate in (False, True):
        fn = jax.jit(lambda s, q: align(s, q, concatenate=concatenate,
                                        out_dtype=jnp.bfloat16).values)
        lines = fn.trace(streams, q).lower(lowering_platforms=("cuda",)).as_text().splitlines()
        call = next(line for line in lines if "robocache_align" in line)
        rows = re.findall(r"tensor<2x10x\d+x(\w+)>", call.rsplit("->", 1)[-1])
        assert rows and set(rows) == {"bf16"}, call
        assert not any("stablehlo.convert" in line and "bf16>" in line.rsplit("->", 1)[-1]
                       for line in lines), "a conversion to bfloat16 follows the kernel"


@pytest.mark.parametrize("out_dtype", [np.float32, jnp.bfloat16])
def test_x64_out_dtype(platform, rng, out_dtype):
    """float64 streams: float32 is written by the kernel (one rounding); a 16-bit out_dtype
    is XLA's conversion of the float64 result."""
    with jax.enable_x64(True):
        v, t, n = make_stream(rng, 2, 25, 4, ragged=True)
        streams = {"a": Stream(v.astype(np.float64), t.astype(np.float64), n),
                   "b": Stream(v[..., :2], t.astype(np.float64), n, method="previous")}
        q = make_queries(rng, 2, 15).astype(np.float64)
        plain = align(streams, q, out_of_range="nan")
        cast = align(streams, q, out_of_range="nan", concatenate=True, out_dtype=out_dtype)
        for name in streams:
            assert cast[name].values.dtype == jnp.dtype(out_dtype)
            want = (np.asarray(plain[name].values).astype(np.float32) if out_dtype == np.float32
                    else jnp.asarray(plain[name].values).astype(out_dtype))
            assert_identical(cast[name].values, want, name)


def test_x64_float64_streams(rng):
    """float64 times and values with x64; a float64 + float32 concatenation (XLA path)."""
    with jax.enable_x64(True):
        v, t, n = make_stream(rng, 2, 20, 3, ragged=True)
        v64, t64 = v.astype(np.float64), t.astype(np.float64)
        q = make_queries(rng, 2, 15).astype(np.float64)
        streams = {"a": Stream(v64, t64, n, method="window_mean", window=0.1, offset=0.01),
                   "b": Stream(v, t64, n)}
        out = align(streams, q, concatenate=("a", "b"))
        assert out["a"].values.dtype == jnp.float64 and out.concatenated().dtype == jnp.float64
        ref = reference_align.align({"a": dict(values=v64, times=t64, lengths=n,
                                               method="window_mean", window=0.1, offset=0.01)},
                                    q, time_dtype=np.float64)
        np.testing.assert_array_equal(out["a"].valid, ref["a"][1])
        np.testing.assert_allclose(np.asarray(out["a"].values), ref["a"][0], rtol=1e-12,
                                   atol=1e-12)


def _three_streams(rng):
    v, t, n = make_stream(rng, 4, 30, 8)
    return {"a": Stream(v, t, n), "b": Stream(v[..., :3].astype(jnp.bfloat16), t, n,
                                                 method="window_mean", window=0.1),
            "c": Stream(v[..., :4], t, n, method="slerp", tolerance=0.1)}, make_queries(rng, 4, 20)


def test_cuda_lowering_is_one_custom_call(rng):
    """Lowered for CUDA (needs the compiled kernels, not a GPU): ONE custom call, 3 streams."""
    if not _extension.has_target("robocache_align"):
        pytest.skip("CUDA kernels not compiled in: " + (_extension.STATUS.reason or "no target"))
    streams, q = _three_streams(rng)
    lowered = jax.jit(align).trace(streams, q).lower(lowering_platforms=("cuda",)).as_text()
    assert lowered.count("robocache_align") == 1, lowered
    assert "robocache_resample" not in lowered


def test_gpu_compiled_hlo_has_one_custom_call(monkeypatch, rng):
    """On GPU: exactly one robocache_align custom call in the compiled HLO; FORCE_JNP removes it."""
    if not gpu_available():
        pytest.skip("no GPU with jax_robocache CUDA kernels")
    streams, q = _three_streams(rng)
    with jax.default_device(device("gpu")):
        hlo = jax.jit(align).lower(streams, q).compile().as_text()
        assert hlo.count('custom_call_target="robocache_align"') == 1, hlo
        # fuse_multimodal: the kernel writes the concatenated rows, XLA concatenates nothing
        v, t, _ = make_stream(rng, 4, 30, 8, ragged=False)
        fused = jax.jit(fuse_multimodal).lower(v.astype(jnp.bfloat16), t, v[..., :3], t,
                                               v[..., :2], t, q).compile().as_text()
        assert fused.count('custom_call_target="robocache_align"') == 1, fused
        assert "concatenate(" not in fused, fused
        monkeypatch.setenv("JAX_ROBOCACHE_FORCE_JNP", "1")
        again = jax.jit(lambda s, q: align(s, q)).lower(streams, q).as_text()
        assert "robocache_align" not in again
