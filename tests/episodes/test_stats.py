"""Stream statistics and normalisation against numpy float64 on the same data."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_robocache.episodes import normalize as norm
from jax_robocache.episodes import stats as st

SENA = Path(__file__).resolve().parents[2] / "jax_robocache" / "demo" / "data" / "sena.npz"


def _reference(x: np.ndarray, valid: np.ndarray | None, qs=st.QUANTILES) -> dict:
    """numpy float64, per feature, over valid finite samples."""
    rows = x if valid is None else x[valid]
    out = {"count": [], "mean": [], "std": [], "min": [], "max": [], "nonfinite": []}
    out.update({q: [] for q in qs})
    for d in range(x.shape[1]):
        col = rows[:, d].astype(np.float64)
        fin = col[np.isfinite(col)]
        out["nonfinite"].append(int((~np.isfinite(col)).sum()))
        out["count"].append(len(fin))
        for key, fn in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max)):
            out[key].append(fn(fin) if len(fin) else np.nan)
        for q in qs:
            out[q].append(np.quantile(fin, q) if len(fin) else np.nan)
    return {k: np.asarray(v) for k, v in out.items()}


def _draw(rng, n, d):
    scale = rng.choice([1e-3, 1.0, 10.0, 1e4], size=d)
    offset = rng.choice([0.0, 5.0, -2e5, 1.7e9], size=d)
    x = (rng.standard_normal((n, d)) * scale + offset).astype(np.float32)
    x[:, 0] = np.round(x[:, 0])          # many ties
    return x


def _close(actual, expected, rtol, atol):
    """|actual - expected| <= rtol |expected| + atol elementwise (atol may be per feature)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    bad = ~(np.abs(actual - expected) <= rtol * np.abs(expected) + atol)
    bad &= ~(np.isnan(actual) & np.isnan(expected))
    assert not bad.any(), f"actual {actual[bad]} expected {expected[bad]}"


def _check(s: st.StreamStats, ref: dict, x: np.ndarray):
    np.testing.assert_array_equal(s.count, ref["count"])
    np.testing.assert_array_equal(s.nonfinite, ref["nonfinite"])
    np.testing.assert_array_equal(s.min, ref["min"].astype(np.float32))   # exact
    np.testing.assert_array_equal(s.max, ref["max"].astype(np.float32))
    spread = np.max(np.where(np.isfinite(x), np.abs(x), 0), 0).astype(np.float64)
    # mean and std: float32 sums of shifted values; a few float32 ulps of the data
    _close(s.mean, ref["mean"], 2e-6, 1e-6 * spread)
    _close(s.std, ref["std"], 1e-4, 1e-6 * spread)
    for q in st.QUANTILES:
        # exact order statistics: only the float32 interpolation a + f (b - a) rounds, by
        # at most ~3 float32 ulps of the larger order statistic (bounded by the data's spread)
        _close(s.quantiles[q], ref[q], 2e-7, 2.4e-7 * spread)


@pytest.mark.parametrize("n,d", [(1, 3), (2, 2), (101, 4), (5000, 6)])
def test_stats_match_numpy(rng, n, d):
    x = _draw(rng, n, d)
    valid = rng.random(n) > 0.2
    valid[0] = True
    x[rng.random((n, d)) < 0.05] = np.nan
    x[rng.random((n, d)) < 0.01] = np.inf
    s = st.stream_stats(x, valid)
    _check(s, _reference(x, valid), x)


def test_stats_without_mask_and_one_feature(rng):
    x = rng.standard_normal(777).astype(np.float32)
    s = st.stream_stats(x)
    _check(s, _reference(x[:, None], None), x[:, None])


def test_bfloat16_values_are_converted_exactly(rng):
    x = jnp.asarray(rng.standard_normal((300, 2)), jnp.bfloat16)
    s = st.stream_stats(x)
    ref = _reference(np.asarray(x.astype(jnp.float32)), None)
    np.testing.assert_array_equal(s.min, ref["min"].astype(np.float32))
    for q in st.QUANTILES:
        np.testing.assert_allclose(s.quantiles[q], ref[q], rtol=2e-7)


def test_empty_and_all_masked_features_are_nan_with_count_zero(rng):
    x = rng.standard_normal((10, 2)).astype(np.float32)
    x[:, 1] = np.nan
    s = st.stream_stats(x, np.ones(10, bool))
    assert s.count.tolist() == [10, 0] and s.nonfinite.tolist() == [0, 10]
    assert all(np.isnan(v[1]) for v in (s.mean, s.std, s.min, s.max, *s.quantiles.values()))
    s = st.stream_stats(x, np.zeros(10, bool))
    assert s.count.tolist() == [0, 0] and np.isnan(s.mean).all()


def test_mean_does_not_depend_on_the_first_sample(rng):
    """The shift is a rough mean, not the first sample: an outlier first sample (1e4 std
    away) leaves the mean accurate to float32 rounding of the result."""
    x = rng.normal(0.0, 1.0, (200_000, 2)).astype(np.float32)
    x[0] = (1e4, -5.0)
    s = st.stream_stats(x)
    ref = x.astype(np.float64)
    for d in range(2):
        assert abs(s.mean[d] - ref[:, d].mean()) <= 4 * np.spacing(np.float32(ref[:, d].std()))
    np.testing.assert_allclose(s.std, ref.std(0), rtol=1e-6)


def test_no_rows_gives_nan_with_count_zero():
    for x, d in ((np.zeros((0, 3), np.float32), 3), (np.zeros(0, np.float32), 1),
                 (np.zeros((0, 2)), 2), (np.zeros(0), 1)):   # float64 too (the host path)
        s = st.stream_stats(x)
        assert s.count.tolist() == [0] * d
        assert all(np.isnan(v).all() for v in (s.mean, s.std, s.min, s.max,
                                                *s.quantiles.values()))


def test_float64_data_keeps_float64_results(rng):
    """Epoch-like float64 data (1.7e9 + 0.06 s steps): float32 would round them to multiples
    of 128. Without x64 the stats are of float32 deviations from each feature's first value,
    returned in float64; numpy float64 on the same data within float32 rounding of them."""
    x = 1.7e9 + np.cumsum(rng.uniform(0.05, 0.07, (3000, 2)), 0)
    x[5, 1] = np.nan
    valid = rng.random(3000) > 0.1
    s = st.stream_stats(x, valid, quantiles=(0.0, 0.01, 0.5, 0.99, 1.0))
    ref = _reference(x, valid, qs=(0.0, 0.01, 0.5, 0.99, 1.0))
    assert s.mean.dtype == s.std.dtype == s.min.dtype == np.float64
    np.testing.assert_array_equal(s.count, ref["count"])
    dev = 200.0  # the deviations' size: float32 keeps them to ~1e-5 s
    for k in ("mean", "min", "max"):
        np.testing.assert_allclose(getattr(s, k), ref[k], rtol=0, atol=dev * 1e-7)
    np.testing.assert_allclose(s.std, ref["std"], rtol=1e-5)
    for q in (0.0, 0.01, 0.5, 0.99, 1.0):
        np.testing.assert_allclose(s.quantiles[q], ref[q], rtol=0, atol=dev * 1e-7)


def test_float64_outlier_keeps_the_bulks_resolution(rng):
    """A glitch at 1e9 in millimetre-scale float64 data: the deviations are taken from the
    median, so the bulk keeps its resolution (quantiles and min as numpy's)."""
    x = np.r_[1e9, rng.normal(size=20000) * 1e-3]
    s = st.stream_stats(x, quantiles=(0.01, 0.5, 0.99))
    ref = _reference(x[:, None], None, qs=(0.01, 0.5, 0.99))
    for q in (0.01, 0.5, 0.99):
        np.testing.assert_allclose(s.quantiles[q], ref[q], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(s.min, ref["min"], rtol=1e-6)
    np.testing.assert_allclose(s.max, ref["max"], rtol=1e-7)
    with pytest.raises(ValueError, match=r"valid must be a bool array of shape \(5,\)"):
        st.stream_stats(np.zeros((5, 2)), np.ones(4, bool))
    with pytest.raises(ValueError, match=r"values must have shape \[N, D\]"):
        st.stream_stats(np.zeros((5, 2, 2)))


def test_wide_streams_are_taken_in_feature_blocks(rng, monkeypatch):
    monkeypatch.setattr(st, "_HISTOGRAM_BUDGET", st._BINS * 4 * 3)   # 3 features per block
    x = _draw(rng, 500, 8)
    valid = rng.random(500) > 0.2
    _check(st.stream_stats(x, valid), _reference(x, valid), x)


def test_signed_zeros_and_denormals_order(rng):
    tiny = np.float32(1e-40)
    x = np.array([[-0.0], [0.0], [tiny], [-tiny], [1.0], [-1.0]], np.float32)
    s = st.stream_stats(x, quantiles=(0.0, 0.2, 0.5, 1.0))
    for q in (0.0, 0.2, 0.5, 1.0):
        assert s.quantiles[q][0] == np.float32(np.quantile(x[:, 0].astype(np.float64), q))


def test_bitwise_deterministic(rng):
    x = _draw(rng, 20000, 5)
    valid = rng.random(20000) > 0.3
    a, b = st.stream_stats(x, valid), st.stream_stats(x, valid)
    for f in ("count", "mean", "std", "min", "max"):
        assert getattr(a, f).tobytes() == getattr(b, f).tobytes()
    assert all(a.quantiles[q].tobytes() == b.quantiles[q].tobytes() for q in st.QUANTILES)


def test_merge_across_shards_equals_whole(rng):
    """Moments merge with Chan's formula and histograms add: the protocol of several hosts."""
    x = _draw(rng, 9000, 4)
    valid = rng.random(9000) > 0.25
    cuts = [0, 0, 1000, 1001, 6000, 9000]   # an empty shard (a host with no data) too
    parts = [(x[a:b], valid[a:b]) for a, b in zip(cuts, cuts[1:])]
    moments = None
    for px, pv in parts:
        m = st.partial_moments(px, pv)
        moments = m if moments is None else st.merge_moments(moments, m)
    coarse = sum(np.asarray(st.coarse_histogram(px, pv), np.int64) for px, pv in parts)
    targets = st.quantile_targets(coarse)
    fine = sum(np.asarray(st.fine_histogram(px, pv, jnp.asarray(targets, jnp.int32)), np.int64)
               for px, pv in parts)
    qv = st.finish_quantiles(coarse, fine, targets)
    ref = _reference(x, valid)
    _check(st.finish_stats(moments, qv), ref, x)   # the StreamStats save_stats writes
    np.testing.assert_array_equal(np.asarray(moments.count), ref["count"])
    mean = np.asarray(moments.shift, np.float64) + np.asarray(moments.mean, np.float64)
    _close(mean, ref["mean"], 2e-6, 1e-6 * np.abs(x).max(0))
    std = np.sqrt(np.asarray(moments.m2, np.float64) / ref["count"])
    _close(std, ref["std"], 1e-4, 1e-6 * np.abs(x).max(0))
    for q in st.QUANTILES:
        _close(qv[q], ref[q], 2e-7, 2.4e-7 * np.abs(x).max(0))
    coarse_q = st.coarse_quantiles(coarse)
    for q in st.QUANTILES:   # the lower edge of the bin of the rank: 2**-7 relative below it,
        for d in range(x.shape[1]):   # 2**-133 absolute among subnormals and zero (-0.0's bin)
            col = np.sort(x[valid, d].astype(np.float64))
            exact = col[int(np.floor(q * (len(col) - 1)))]
            edge = float(coarse_q[q][d])
            width = max(2.0 ** -7 * max(abs(edge), abs(exact)), 2.0 ** -133)
            assert edge <= exact <= edge + width, (q, d, edge, exact)


def test_real_laser_ranges():
    """The MRPT laser scans (real data, 361 beams): per-beam statistics."""
    ranges = np.load(SENA)["ranges"]
    valid = np.ones(len(ranges), bool)
    valid[::9] = False
    s = st.stream_stats(ranges, valid)
    _check(s, _reference(ranges, valid), ranges)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match=r"values must have shape \[N, D\]"):
        st.stream_stats(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(TypeError, match="values must be floating point"):
        st.stream_stats(np.zeros((5, 2), np.int32))
    with pytest.raises(ValueError, match="valid must be a bool array of shape"):
        st.stream_stats(np.zeros((5, 2), np.float32), np.ones(4, bool))
    with pytest.raises(ValueError, match="quantiles must lie in"):
        st.stream_stats(np.zeros((5, 2), np.float32), quantiles=(1.5,))


# -- normalisation -------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["mean_std", "min_max", "quantile"])
def test_normalize_formulas_and_inverse_under_jit(rng, mode):
    x = _draw(rng, 2000, 3)[:, 1:]
    s = st.stream_stats(x)
    windows = x[:1200].reshape(40, 30, 2)            # [B, K, D], as sample_windows gives
    y = jax.jit(lambda w: norm.normalize(w, s, mode))(windows)
    d = windows.astype(np.float64)
    if mode == "mean_std":
        ref = (d - s.mean) / (s.std.astype(np.float64) + 1e-8)
    elif mode == "min_max":
        ref = 2 * (d - s.min) / (s.max.astype(np.float64) - s.min + 1e-8) - 1
    else:
        lo, hi = s.quantiles[0.01].astype(np.float64), s.quantiles[0.99].astype(np.float64)
        ref = 2 * (d - lo) / (hi - lo + 1e-6) - 1
    assert y.dtype == jnp.float32 and y.shape == windows.shape
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-4, atol=1e-4)
    back = jax.jit(lambda v: norm.unnormalize(v, s, mode))(y)
    _close(back, windows, 1e-5, 1e-5 * np.abs(windows).max())


def test_normalize_integer_input_gives_float32(rng):
    """A gripper state stored as int: normalised values are fractions, not truncated."""
    x = rng.integers(0, 5, (100, 2)).astype(np.int32)
    s = st.stream_stats(x.astype(np.float32))
    y = norm.normalize(x, s)
    assert y.dtype == jnp.float32
    ref = (x - s.mean.astype(np.float64)) / (s.std.astype(np.float64) + 1e-8)
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(norm.unnormalize(y, s)), x, atol=1e-5)


def test_normalize_with_lerobot_image_stats(rng):
    """LeRobot's image stats are [3, 1, 1]: they broadcast over images [..., 3, H, W]."""
    img = rng.uniform(0, 1, (2, 4, 3, 5, 6)).astype(np.float32)
    stats = {"mean": np.float32([0.4, 0.5, 0.6]).reshape(3, 1, 1),
             "std": np.float32([0.2, 0.25, 0.3]).reshape(3, 1, 1)}
    y = jax.jit(lambda x: norm.normalize(x, stats))(img)
    ref = (img.astype(np.float64) - stats["mean"]) / (stats["std"].astype(np.float64) + 1e-8)
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-5, atol=1e-6)


def test_normalize_errors():
    s = st.stream_stats(np.ones((4, 2), np.float32), quantiles=())
    with pytest.raises(ValueError, match="mode must be one of"):
        norm.normalize(np.ones((3, 2), np.float32), s, "zscore")
    with pytest.raises(KeyError, match="q01"):
        norm.normalize(np.ones((3, 2), np.float32), s, "quantile")
    with pytest.raises(ValueError, match="do not match the feature axis"):
        norm.normalize(np.ones((3, 5), np.float32), s)
    with pytest.raises(ValueError, match="do not match the feature axis"):
        norm.normalize(np.ones((3, 5), np.float32), {"mean": np.zeros(1), "std": np.ones(1)})


def test_save_load_lerobot_keys(tmp_path, rng):
    x = _draw(rng, 500, 3)
    s = st.stream_stats(x)
    path = tmp_path / "stats.json"
    st.save_stats({"observation.state": s}, path)
    doc = json.loads(path.read_text())
    assert set(doc["observation.state"]) == {"mean", "std", "min", "max", "count", "q01", "q99"}
    assert doc["observation.state"]["count"] == [500]
    back = st.load_stats(path)["observation.state"]
    np.testing.assert_array_equal(back["q99"], s.quantiles[0.99])
    y1 = norm.normalize(x, back, "quantile")          # a stats.json entry works as stats
    y2 = norm.normalize(x, s, "quantile")
    np.testing.assert_array_equal(np.asarray(y1), np.asarray(y2))


def test_store_stats_respect_episodes_and_masks(rng):
    """EpisodeStore.stats: every episode's samples, masked ones left out."""
    from jax_robocache import EpisodeStore
    lengths = [5, 0, 300, 1, 77]
    values = [_draw(rng, n, 3) for n in lengths]
    masks = [rng.random(n) > 0.2 for n in lengths]
    times = [np.arange(n) * 0.02 for n in lengths]
    store = EpisodeStore.from_episodes({"state": values}, {"state": times}, valid={"state": masks})
    s = store.stats("state")["state"]
    flat, mask = np.concatenate(values), np.concatenate(masks)
    _check(s, _reference(flat, mask), flat)
    with pytest.raises(KeyError, match="no stream 'action'"):
        store.stats(["action"])
