"""resample against the independent float64 numpy reference, on CPU and (when present) GPU."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from jax.experimental import checkify
from jax.test_util import check_grads

from references import resample as reference
from conftest import PLATFORMS, device, rng_for, skip_unless_platform
from exact import assert_identical
from jax_robocache import Stream, align, resample
from jax_robocache.streams.resample_cases import episodes

METHODS = ("linear", "nearest", "previous", "slerp")
POLICIES = ("clamp", "nan", "extrapolate")
DTYPES = {"float32": np.float32, "bfloat16": jnp.bfloat16, "float16": np.float16}
# Absolute tolerance relative to the largest |value|: output rounding of each dtype.
TOL = {"float32": 2e-6, "bfloat16": 8e-3, "float16": 1e-3, "float64": 1e-12}


def assert_matches(out, ref, dtype_name, scale, err=""):
    out = np.asarray(jnp.asarray(out, jnp.float32) if dtype_name != "float64" else out,
                     np.float64)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref), err_msg="NaN pattern " + err)
    tol = TOL[dtype_name] * max(scale, 1.0)
    np.testing.assert_allclose(np.nan_to_num(out), np.nan_to_num(ref), rtol=TOL[dtype_name],
                               atol=tol, err_msg=err)


def valid_combo(method, policy):
    return policy != "extrapolate" or method == "linear"


class ResampleReferenceTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.product(platform=PLATFORMS, method=METHODS, out_of_range=POLICIES,
                           dtype=tuple(DTYPES))
    def test_matches_reference(self, platform, method, out_of_range, dtype):
        skip_unless_platform(self, platform)
        if not valid_combo(method, out_of_range):
            self.skipTest("extrapolate is linear-only (its error is tested separately)")
        rng = rng_for(f"{self.id()}")
        B, S, T = int(rng.integers(1, 9)), int(rng.integers(1, 40)), int(rng.integers(1, 70))
        D = 4 if method == "slerp" else int(rng.integers(1, 20))
        values, times, queries, lengths = episodes(
            rng, B, S, D, T, value_dtype=DTYPES[dtype], quaternions=method == "slerp")
        fn = self.variant(functools.partial(resample, method=method, out_of_range=out_of_range,
                                            return_valid=True))
        with jax.default_device(device(platform)):
            out, valid = fn(values, times, queries, lengths=lengths)
        ref, ref_valid = reference.resample(values, times, queries, lengths, method,
                                            out_of_range)
        chex.assert_shape(out, (B, T, D))
        self.assertEqual(out.dtype, jnp.dtype(DTYPES[dtype]))
        np.testing.assert_array_equal(valid, ref_valid)
        scale = float(np.nanmax(np.abs(ref), initial=1.0))
        assert_matches(out, ref, dtype, scale, f"{method}/{out_of_range}/{dtype} B={B} S={S}")

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.product(platform=PLATFORMS, method=("linear", "nearest", "previous"))
    def test_shared_query_clock(self, platform, method):
        """A plain [T] query shared by all episodes, aligned to each episode's time base."""
        skip_unless_platform(self, platform)
        rng = rng_for(self.id())
        values, times, _, lengths = episodes(rng, 5, 30, 7, 1)
        clock = np.linspace(-1.2, 1.5, 40, dtype=np.float32)
        fn = self.variant(functools.partial(resample, method=method))
        with jax.default_device(device(platform)):
            out = fn(values, times, clock, lengths=lengths)
        ref, _ = reference.resample(values, times, clock, lengths, method, "clamp")
        assert_matches(out, ref, "float32", float(np.abs(ref).max()))


@pytest.mark.parametrize("method", METHODS)
def test_vmap_matches_loop(platform, rng, method):
    values, times, queries, lengths = episodes(rng, 6, 25, 4, 33, quaternions=method == "slerp")
    f = functools.partial(resample, method=method)
    batched = jax.vmap(lambda v, t, q: f(v, t, q, lengths=None))(values, times, queries)
    looped = np.stack([f(values[b], times[b], queries[b]) for b in range(6)])
    np.testing.assert_allclose(batched, looped, rtol=1e-6, atol=1e-6)
    # ragged lengths through vmap, and vmap over a non-leading axis
    with_len = jax.vmap(lambda v, t, q, n: f(v, t, q, lengths=n))(values, times, queries, lengths)
    ref, _ = reference.resample(values, times, queries, lengths, method, "clamp")
    assert_matches(with_len, ref, "float32", float(np.nanmax(np.abs(ref))))
    swapped = jax.vmap(f, in_axes=(1, 1, 1), out_axes=1)(
        values.swapaxes(0, 1), times.swapaxes(0, 1), queries.swapaxes(0, 1))
    np.testing.assert_allclose(swapped.swapaxes(0, 1), batched, rtol=1e-6, atol=1e-6)


def test_vmap_unbatched_times_and_queries(platform, rng):
    """vmap over values only: one clock shared by all episodes, and one query set."""
    values = rng.normal(size=(5, 12, 3)).astype(np.float32)
    times = np.sort(rng.uniform(0, 1, 12)).astype(np.float32)
    queries = rng.uniform(-0.1, 1.1, 17).astype(np.float32)
    out = jax.vmap(resample, in_axes=(0, None, None))(values, times, queries)
    ref, _ = reference.resample(values, times, queries)
    assert_matches(out, ref, "float32", float(np.abs(ref).max()))
    # nested vmap: over episodes and over several query sets per episode
    qsets = rng.uniform(-0.1, 1.1, (5, 3, 9)).astype(np.float32)
    out2 = jax.vmap(jax.vmap(resample, in_axes=(None, None, 0)), in_axes=(0, None, 0))(
        values, times, qsets)
    for k in range(3):
        ref_k, _ = reference.resample(values, times, qsets[:, k])
        assert_matches(out2[:, k], ref_k, "float32", float(np.abs(ref_k).max()))


@pytest.mark.parametrize("method", METHODS)
def test_grad_values(platform, rng, method):
    values, times, queries, _ = episodes(rng, 2, 9, 4, 11, quaternions=method == "slerp",
                                         duplicates=False, ragged=False)
    queries = queries.astype(np.float32)
    f = lambda v: resample(v, times, queries, method=method)  # noqa: E731
    check_grads(f, (values,), order=1, modes=("fwd", "rev"), atol=2e-2, rtol=2e-2)


def test_grad_query_times_linear(platform, rng):
    values = rng.normal(size=(3, 10, 5)).astype(np.float32)
    # segments of 5-15 ms, so finite differences (eps=1e-4) never leave a segment
    times = np.cumsum(rng.uniform(0.005, 0.015, (3, 10)), axis=1).astype(np.float32)
    # queries strictly inside segments (derivative is piecewise constant)
    i = rng.integers(0, 9, (3, 8))
    frac = rng.uniform(0.2, 0.8, (3, 8))
    t64 = times.astype(np.float64)
    queries = (np.take_along_axis(t64, i, 1) * (1 - frac)
               + np.take_along_axis(t64, i + 1, 1) * frac).astype(np.float32)
    f = lambda q: resample(values, times, q)  # noqa: E731
    check_grads(f, (queries,), order=1, modes=("fwd", "rev"), eps=1e-4, atol=2e-2, rtol=2e-2)
    # analytic check: d out / d q = segment slope
    g = jax.jacfwd(lambda q: resample(values, times, q).sum(-1))(queries)
    slope = (np.take_along_axis(values.sum(-1), i + 1, 1) - np.take_along_axis(values.sum(-1), i, 1)) / (
        np.take_along_axis(t64, i + 1, 1) - np.take_along_axis(t64, i, 1))
    np.testing.assert_allclose(np.einsum("bqbq->bq", g.reshape(3, 8, 3, 8)), slope, rtol=1e-3)


def test_grad_under_jit_and_vmap(platform, rng):
    values, times, queries, lengths = episodes(rng, 4, 16, 3, 10)
    loss = lambda v, q, n: jnp.nansum(resample(v, times, q, lengths=n) ** 2)  # noqa: E731
    g = jax.jit(jax.grad(loss, argnums=(0, 1)))(values, queries, lengths)
    gv = jax.jit(jax.vmap(jax.grad(lambda v, t, q, n: jnp.nansum(
        resample(v, t, q, lengths=n) ** 2))))(values, times, queries, lengths)
    np.testing.assert_allclose(g[0], gv, rtol=1e-5, atol=1e-5)
    assert np.isfinite(np.asarray(g[0])).all() and np.isfinite(np.asarray(g[1])).all()


@pytest.mark.parametrize("out_of_range", ["clamp", "nan", "extrapolate"])
def test_grad_times_ignores_nan_queries(platform, rng, out_of_range):
    """A NaN query (a padded batch row) adds nothing to d loss / d times: the loss over the
    valid outputs has the same finite gradient with and without NaN queries, for resample and
    align (linear, the methods with a times gradient)."""
    values = rng.normal(size=(2, 12, 3)).astype(np.float32)
    times = np.cumsum(rng.uniform(0.05, 0.15, (2, 12)), axis=1).astype(np.float32)
    q = np.sort(rng.uniform(times[:, :1] - 0.1, times[:, -1:] + 0.1, (2, 9)), 1).astype(np.float32)
    q_nan = q.copy()
    q_nan[:, ::3] = np.nan

    def loss(t, q, op):
        if op == "resample":
            out, valid = resample(values, t, q, out_of_range=out_of_range, return_valid=True)
        else:
            r = align({"s": Stream(values, t)}, q, out_of_range=out_of_range)["s"]
            out, valid = r.values, r.valid
        keep = valid & ~jnp.isnan(q)
        return jnp.sum(jnp.where(keep[..., None], out, 0.0) ** 2)

    kept = np.arange(q.shape[1]) % 3 != 0  # the queries that are not NaN
    for op in ("resample", "align"):
        g_nan = np.asarray(jax.grad(loss)(times, q_nan, op))
        g_ref = np.asarray(jax.grad(loss)(times, q[:, kept], op))
        assert np.isfinite(g_nan).all(), (op, g_nan)
        assert np.abs(g_ref).sum() > 0
        np.testing.assert_allclose(g_nan, g_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_edge_sizes(platform, rng, method):
    D = 4
    q1 = rng.normal(size=(2, 1, D)).astype(np.float32)
    q1 /= np.linalg.norm(q1, axis=-1, keepdims=True)
    t1 = rng.normal(size=(2, 1)).astype(np.float32)
    queries = rng.normal(size=(2, 5)).astype(np.float32)
    out = resample(q1, t1, queries, method=method)  # S = 1: the single sample everywhere
    np.testing.assert_allclose(out, np.broadcast_to(q1, (2, 5, D)), rtol=1e-6)
    chex.assert_shape(resample(q1, t1, queries[:, :0], method=method), (2, 0, D))  # T = 0
    chex.assert_shape(resample(q1[:0], t1[:0], queries[:0], method=method), (0, 5, D))  # B = 0
    zero_len = resample(q1, t1, queries, lengths=np.zeros(2, np.int32), method=method)
    assert_identical(zero_len, np.zeros((2, 5, D), np.float32))  # +0.0
    nan_len = resample(q1, t1, queries, lengths=np.zeros(2, np.int32), method=method,
                       out_of_range="nan")
    assert np.isnan(np.asarray(nan_len)).all()


@pytest.mark.parametrize("method", ("linear", "nearest", "previous"))
def test_nan_values_reach_only_their_outputs(platform, rng, method):
    values = rng.normal(size=(1, 10, 3)).astype(np.float32)
    times = np.arange(10, dtype=np.float32)[None]
    values[0, 4, 1] = np.nan
    queries = np.array([[3.0, 3.5, 4.0, 4.4, 4.6, 5.0, 2.2, 8.9]], np.float32)
    out = np.asarray(resample(values, times, queries, method=method))
    ref, _ = reference.resample(values, times, queries, None, method, "clamp")
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    assert not np.isnan(out[0, :, [0, 2]]).any()  # other features never touched
    assert not np.isnan(out[0, 0]).any() and not np.isnan(out[0, 5]).any()  # exact t=3, t=5


def test_nan_query_gives_nan(platform):
    values = np.arange(8, dtype=np.float32).reshape(1, 4, 2)
    out, valid = resample(values, np.arange(4.0, dtype=np.float32)[None],
                          np.array([[np.nan, 1.5]], np.float32), return_valid=True)
    assert np.isnan(np.asarray(out[0, 0])).all() and not valid[0, 0] and valid[0, 1]


@pytest.mark.parametrize("unit_int", [False, True])
def test_epoch_timestamps_match_float64(platform, rng, unit_int):
    """1 kHz samples at epoch ~1.7e9 s: host float64 / int64 ns must not lose precision."""
    S, T = 3000, 200
    t_ns = 1_700_000_000_000_000_000 + np.cumsum(rng.integers(900_000, 1_100_000, S))
    t_s = t_ns.astype(np.float64) * 1e-9
    q_ns = rng.integers(t_ns[0], t_ns[-1], T)
    q_s = q_ns.astype(np.float64) * 1e-9
    values = np.sin(np.linspace(0, 40, S))[:, None].astype(np.float32) * [1.0, -2.0]
    values = values.astype(np.float32)
    # independent float64 reference in integer-exact relative time
    ref, _ = reference.resample(values[None], ((t_ns - t_ns[0]) * 1e-9)[None],
                                ((q_ns - t_ns[0]) * 1e-9)[None])
    if unit_int:
        out = resample(values, t_ns, q_ns)
    else:
        out = resample(values, t_s, q_s)
    np.testing.assert_allclose(np.asarray(out), ref[0], atol=2e-4)
    # the naive float32 cast cannot be resolved: refused (tests/streams/test_epoch_timestamps.py)
    with pytest.raises(ValueError, match="cannot be resolved in float32"):
        resample(values, t_s.astype(np.float32), q_s.astype(np.float32))


def test_validate_eager_and_checkify(platform):
    values = np.ones((2, 4, 1), np.float32)
    good = np.tile(np.arange(4, dtype=np.float32), (2, 1))
    q = np.zeros((2, 3), np.float32)
    resample(values, good, q, validate=True)  # passes
    resample(values[:, :1], good[:, :1], q, validate=True)  # S = 1: nothing to compare (found
    resample(values[:0], good[:0], q[:0], validate=True)  # by fuzzing); no episodes
    unsorted = good.copy()
    unsorted[1, 2] = -5
    with pytest.raises(Exception, match="non-decreasing"):
        resample(values, unsorted, q, validate=True)
    # unsorted beyond the valid length is fine
    resample(values, unsorted, q, lengths=np.array([4, 2]), validate=True)
    nan_t = good.copy()
    nan_t[0, 1] = np.nan
    with pytest.raises(Exception, match="non-finite"):
        resample(values, nan_t, q, validate=True)
    with pytest.raises(Exception, match="lengths"):
        resample(values, good, q, lengths=np.array([5, 1]), validate=True)
    f = jax.jit(lambda t: resample(values, t, q, validate=True))
    err, _ = checkify.checkify(f)(jnp.asarray(unsorted))
    assert "non-decreasing" in str(err.get())
    err, _ = checkify.checkify(f)(jnp.asarray(good))
    assert err.get() is None
    with pytest.raises(ValueError, match="checkify"):
        f(good)


def _rows_of(rows, samples):
    """Whether each row [T, D] equals one of the sample rows [n, D] exactly."""
    return (rows[:, None, :] == samples[None, :, :]).all(-1).any(-1)


def _on_adjacent_segment(rows, samples, tol=1e-4):
    """Whether each row [T, D] is v_i + w (v_{i+1} - v_i) for some adjacent pair of sample rows
    [n, D] and some finite w (linear interpolation or extrapolation along one segment)."""
    if len(samples) == 1:
        return _rows_of(rows, samples)
    a, d = samples[:-1], np.diff(samples, axis=0)  # [n-1, D]
    rel = rows[:, None, :] - a[None]  # [T, n-1, D]
    w = (rel * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-30)
    resid = np.abs(rel - w[..., None] * d).max(-1)
    scale = 1 + np.abs(w) * np.abs(d).max(-1)
    return (resid <= tol * scale).any(-1)


def test_unsorted_and_bad_lengths_never_crash(platform, rng):
    """Unsorted and NaN timestamps give unspecified values, but only ever made of the valid
    samples: padding is never read (here NaN), indices stay in bounds, lengths outside [0, S]
    are clamped (-3 -> 0: zeros, +0.0; 77 -> S)."""
    B, S, D, T = 4, 50, 8, 40
    values = rng.normal(size=(B, S, D)).astype(np.float32)
    times = rng.normal(size=(B, S)).astype(np.float32)  # unsorted
    lengths = np.array([-3, 77, 30, 50])
    times[:, 0], times[[1, 3], S - 1], times[2, 29] = -5, 5, 5  # most queries inside [t0, tn-1]
    values[2, 30:] = np.nan  # padding past lengths[2]: no output may use it
    times[2, 30:] = np.linspace(-4, 4, S - 30)
    times[3, 7] = np.nan  # a NaN timestamp among the valid samples
    queries = (rng.normal(size=(B, T)) * 3).astype(np.float32)
    queries[:, :4] = [-10.0, 10.0, times[1, 5], times[3, 7 - 1]]
    for method in ("linear", "nearest", "previous"):
        for policy in ("clamp", "extrapolate") if method == "linear" else ("clamp",):
            out = np.asarray(resample(values, times, queries, lengths=lengths, method=method,
                                      out_of_range=policy))
            err = f"{method} {policy}"
            assert out.shape == (B, T, D), err
            assert (out[0] == 0).all() and not np.signbit(out[0]).any(), err
            assert np.isfinite(out[1:]).all(), err  # NaN padding never read
            for b in (1, 2, 3):
                samples = values[b, :min(max(lengths[b], 0), S)].astype(np.float64)
                rows = out[b].astype(np.float64)
                ok = (_on_adjacent_segment(rows, samples) if method == "linear"
                      else _rows_of(rows, samples))
                assert ok.all(), f"{err}: episode {b} rows {np.flatnonzero(~ok)} are not made " \
                                 "of its valid samples"


def test_trace_time_errors():
    v = np.zeros((2, 5, 3), np.float32)
    t = np.zeros((2, 5), np.float32)
    q = np.zeros((2, 4), np.float32)
    with pytest.raises(TypeError, match="values"):
        resample(v.astype(np.int32), t, q)
    with pytest.raises(TypeError, match="times"):
        resample(v, t.astype(np.int32), q)
    with pytest.raises(TypeError, match="query_times must have dtype"):
        resample(v, t, q.astype(np.float16))
    with pytest.raises(ValueError, match="times"):
        resample(v, t[:, :4], q)
    with pytest.raises(ValueError, match="leading"):
        resample(v, t, np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="slerp"):
        resample(v, t, q, method="slerp")
    with pytest.raises(ValueError, match="extrapolate"):
        resample(v, t, q, method="nearest", out_of_range="extrapolate")
    with pytest.raises(ValueError, match="method"):
        resample(v, t, q, method="cubic")
    with pytest.raises(TypeError, match="lengths"):
        resample(v, t, q, lengths=np.ones(2, np.float32))
    with pytest.raises(ValueError, match="values"):
        resample(np.zeros(5, np.float32), t, q)
    with pytest.raises(TypeError, match="host numpy"):
        resample(v, np.zeros((2, 5), np.float64), jnp.zeros((2, 4)))
    # errors happen at trace time under jit too
    with pytest.raises(ValueError, match="slerp"):
        jax.jit(lambda v: resample(v, t, q, method="slerp"))(v)


def test_errors_name_the_real_mistake():
    """A scalar signal without its feature axis, and a float64 numpy clock with float32 times."""
    t = np.sort(np.random.default_rng(0).uniform(0, 1, (4, 100)), axis=-1).astype(np.float32)
    v = np.sin(t)  # [B, S]: one feature, but no feature axis
    with pytest.raises(ValueError, match=r"trailing feature axis.*values\[\.\.\., None\]"):
        resample(v, t, t[:, :5])
    with pytest.raises(ValueError, match=r"trailing feature axis.*values\[\.\.\., None\]"):
        jax.jit(resample)(v, t, t[:, :5])  # at trace time
    with pytest.raises(ValueError, match=r"values\[\.\.\., None\]"):
        resample(v[0], t[0], t[0, :5])  # [S]: rank 1
    assert resample(v[..., None], t, t[:, :5]).shape == (4, 5, 1)  # the advice works
    clock = np.linspace(0.05, 0.5, 46)  # float64, numpy's default
    with pytest.raises(TypeError, match=r"different dtypes \(times float32, query_times float64\)"
                       r".*astype\(np.float32\)"):
        resample(v[..., None], t, clock)
    assert resample(v[..., None], t, clock.astype(np.float32)).shape == (4, 46, 1)


def test_x64_float64_end_to_end(rng):
    with jax.enable_x64(True):
        values, times, queries, lengths = episodes(rng, 3, 20, 2, 15, value_dtype=np.float64,
                                                   time_dtype=np.float64)
        out = resample(values, times, queries, lengths=lengths)
        assert out.dtype == jnp.float64
        ref, _ = reference.resample(values, times, queries, lengths)
        assert_matches(out, ref, "float64", float(np.nanmax(np.abs(ref))))
        with pytest.raises(TypeError, match="share a dtype"):
            resample(values, jnp.asarray(times), jnp.asarray(queries, jnp.float32))


def test_cuda_lowering_is_one_custom_call(monkeypatch, rng):
    """On GPU: exactly one FFI custom call, no host sync; JAX_ROBOCACHE_FORCE_JNP removes it."""
    skip_unless_platform(None, "gpu")
    values, times, queries, lengths = episodes(rng, 4, 30, 8, 20)
    with jax.default_device(device("gpu")):
        f = lambda v, t, q, n: resample(v, t, q, lengths=n)  # noqa: E731
        hlo = jax.jit(f).lower(values, times, queries, lengths).compile().as_text()
        assert hlo.count('custom_call_target="robocache_resample"') == 1, hlo
        monkeypatch.setenv("JAX_ROBOCACHE_FORCE_JNP", "1")
        g = lambda v, t, q, n: resample(v, t, q, lengths=n)  # noqa: E731
        hlo_jnp = jax.jit(g).lower(values, times, queries, lengths).as_text()
        assert "robocache_resample" not in hlo_jnp


def test_inside_scan(platform, rng):
    """The op inside lax.scan (GPU: inside a while loop / command buffer)."""
    values, times, queries, lengths = episodes(rng, 3, 40, 6, 12)
    steps = rng.uniform(0, 0.05, 5).astype(np.float32)

    def body(carry, dt):
        out = resample(values, times, queries + dt, lengths=lengths)
        return carry + jnp.nansum(out), out

    _, outs = jax.jit(lambda s: jax.lax.scan(body, 0.0, s))(steps)
    for k, dt in enumerate(steps):
        ref, _ = reference.resample(values, times, queries + dt, lengths)
        assert_matches(outs[k], ref, "float32", float(np.nanmax(np.abs(ref))))


def test_info_reports_backends():
    import jax_robocache
    info = jax_robocache.info()
    for key in ("version", "jax", "jaxlib", "cuda_kernels_compiled", "cuda_architectures",
                "ops", "force_jnp"):
        assert key in info
    expected = "cuda-ffi" if (jax.default_backend() == "gpu" and info["cuda_kernels_registered"]
                              and not info["force_jnp"]) else "jnp"
    assert info["ops"]["resample"] == expected


@pytest.mark.parametrize("D,S,dtype", [(1, 50, "float32"), (3, 9000, "float32"),
                                       (64, 40, "bfloat16"), (300, 30, "float32"),
                                       (260, 20, "float16")])
def test_row_widths_and_long_episodes(platform, rng, D, S, dtype):
    """Vectorised and scalar row paths, rows wider than a warp, timestamps too long to stage."""
    values, times, queries, lengths = episodes(rng, 3, S, D, 37, value_dtype=DTYPES[dtype])
    for method in ("linear", "nearest"):
        out = resample(values, times, queries, lengths=lengths, method=method)
        ref, _ = reference.resample(values, times, queries, lengths, method, "clamp")
        assert_matches(out, ref, dtype, float(np.nanmax(np.abs(ref))), f"{method} D={D} S={S}")


@pytest.mark.parametrize("dtype,D", [("bfloat16", 256), ("float32", 128)])
def test_bandwidth_bound_shapes(platform, rng, dtype, D):
    """Outputs over 8 MiB with >= 256 queries per episode and rows of <= 512 bytes take the CUDA
    kernel's bandwidth configuration (LargeShapeCfg in csrc/streams/resample_kernels.cu: warp plans,
    several rows in flight); half the episodes have sorted queries, whose neighbours share
    rows."""
    B, S, T = 16, 600, 1100
    values, times, queries, lengths = episodes(rng, B, S, D, T, value_dtype=DTYPES[dtype])
    queries[::2] = np.sort(queries[::2], axis=-1)  # sorted episodes: neighbours share rows
    for method, policy in (("linear", "clamp"), ("nearest", "clamp"), ("previous", "nan"),
                           ("linear", "nan")):
        out, valid = resample(values, times, queries, lengths=lengths, method=method,
                              out_of_range=policy, return_valid=True)
        ref, ref_valid = reference.resample(values, times, queries, lengths, method, policy)
        np.testing.assert_array_equal(np.asarray(valid), ref_valid)
        assert_matches(out, ref, dtype, float(np.nanmax(np.abs(ref))), f"{method}/{policy}")
