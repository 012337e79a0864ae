"""The multi-rate episode generator for benchmarks (jax_robocache.demo.synthetic)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jax_robocache import resample
from jax_robocache.demo.synthetic import multirate_episodes, policy_clock
from jax_robocache import Stream

RATES = {"joints": 500.0, "force": 1000.0, "camera": 30.0}


def test_streams_have_their_rates_jitter_and_dropouts(rng):
    seed = int(rng.integers(2**31))
    B, duration = 16, 4.0
    streams = multirate_episodes(B, duration, jitter=0.2, seed=seed)
    assert set(streams) == set(RATES)
    dims = {"joints": 14, "force": 6, "camera": 512}
    for name, s in streams.items():
        assert isinstance(s, Stream) and s.method == "linear"
        S = s.times.shape[1]
        assert s.values.shape == (B, S, dims[name]) and s.times.dtype == np.float32
        n = np.asarray(s.lengths)
        nominal = duration * RATES[name]
        assert n.max() == S and np.all(n <= nominal + 1) and np.all(n > 0.5 * nominal)
        assert np.any(n < nominal - 1), f"{name}: no dropouts"
        assert np.all(np.isfinite(s.values))
        for b in range(B):
            t = s.times[b, :n[b]].astype(np.float64)
            gaps = np.diff(t)
            assert np.all(gaps > 0), name  # jitter < 1 period keeps the order
            period = 1 / RATES[name]
            assert np.min(gaps) > 0.79 * period - 1e-6  # jitter +-0.1 period per sample
            assert abs(np.median(gaps) - period) < 0.1 * period
            assert 0 <= t[0] and t[-1] < duration
            assert np.all(s.times[b, n[b]:] == s.times[b, n[b] - 1])  # padding stays sorted
            assert np.all(s.values[b, n[b]:] == 0)
    # bursts: some episode of the 1 kHz stream lost a whole stretch (> 40 ms)
    force = streams["force"]
    widest = max(np.diff(force.times[b, :force.lengths[b]]).max() for b in range(B))
    assert widest > 0.04


def test_deterministic_per_seed_and_dtype():
    a = multirate_episodes(2, 1.0, seed=3, camera_dtype=jnp.bfloat16)
    b = multirate_episodes(2, 1.0, seed=3, camera_dtype=jnp.bfloat16)
    c = multirate_episodes(2, 1.0, seed=4)
    assert a["camera"].values.dtype == jnp.bfloat16
    for name in RATES:
        np.testing.assert_array_equal(a[name].times, b[name].times)
        np.testing.assert_array_equal(np.asarray(a[name].values, np.float32),
                                      np.asarray(b[name].values, np.float32))
    assert not np.array_equal(a["joints"].times, c["joints"].times)
    with pytest.raises(ValueError, match="jitter"):
        multirate_episodes(1, 1.0, jitter=1.5)


def test_streams_feed_the_ops():
    streams = multirate_episodes(4, 2.0, seed=0)
    clock = policy_clock(2.0, 50.0)
    assert clock.shape == (99,) and clock[0] > 0 and clock[-1] < 2.0
    s = streams["joints"]
    out = resample(s.values, s.times, clock, lengths=s.lengths)
    assert out.shape == (4, 99, 14) and bool(jnp.all(jnp.isfinite(out)))
    # smooth signals: without gaps, linear and nearest (1 ms away at most) nearly agree
    s = multirate_episodes(4, 2.0, dropout=0.0, gap_prob=0.0, seed=0)["joints"]
    linear = resample(s.values, s.times, clock, lengths=s.lengths)
    near = resample(s.values, s.times, clock, lengths=s.lengths, method="nearest")
    assert float(jnp.max(jnp.abs(linear - near))) < 0.05
