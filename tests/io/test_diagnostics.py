"""check_timestamps on hand-made clocks (float seconds, int64 ns, NaN, empty episodes)."""

from __future__ import annotations

import numpy as np
import pytest

from jax_robocache.io.diagnostics import CATEGORIES, check_timestamps


def test_categories_and_mask_float():
    P = 0.1
    t = np.array([0.0, 0.1, 0.1, 0.2, np.nan, 0.3, 0.25, 0.6, 0.7003, 0.8])
    valid, (r,) = check_timestamps(t, [0, len(t)], period=P, tolerance=1e-4)
    np.testing.assert_array_equal(r.duplicate, [2])
    np.testing.assert_array_equal(r.nan, [4])
    np.testing.assert_array_equal(r.backward, [6])
    np.testing.assert_array_equal(r.gap, [7])
    np.testing.assert_allclose(r.gap_seconds, [0.3])
    np.testing.assert_array_equal(r.jitter, [8, 9])
    np.testing.assert_array_equal(np.flatnonzero(~valid), [2, 4, 6])
    assert not r.ok and r.samples == 10 and r.start == 0.0 and r.end == 0.8
    assert "1 gap" in str(r)


def test_int64_ns_exact_and_episodes():
    base = 1_700_000_000_123_456_789  # float64 cannot hold this to the ns
    t = base + np.array([0, 1, 1, 2, 0, 10, 20], np.int64)  # ns steps
    valid, reps = check_timestamps(t, [0, 4, 4, 7], tolerance=0.0, scale=1e-9,
                                   episodes=[7, 8, 9])
    assert [r.episode for r in reps] == [7, 8, 9]
    np.testing.assert_array_equal(reps[0].duplicate, [2])
    assert reps[1].samples == 0 and reps[1].ok
    assert reps[2].ok
    np.testing.assert_array_equal(np.flatnonzero(~valid), [2])


def test_unknown_category():
    with pytest.raises(ValueError, match="unknown"):
        check_timestamps(np.zeros(2), [0, 2], invalid=("late",))


@pytest.mark.parametrize("seed", range(12))
def test_random_clocks_match_the_loop(seed):
    """Random clocks with every irregularity, several episodes, float and int64 ns."""
    from timestamp_reference import CATEGORIES, loop_report

    rng = np.random.default_rng(seed)
    P, tol = 1 / 30, 1e-3
    lengths = rng.integers(0, 40, rng.integers(1, 5))
    eps = []
    for n in lengths:
        step = np.full(n, P)
        kind = rng.random(n)
        step[kind < 0.05] = 0.0                                   # duplicates
        step[(kind >= 0.05) & (kind < 0.1)] = -rng.uniform(0.002, 0.05)  # backward
        step[(kind >= 0.1) & (kind < 0.15)] = P * rng.integers(2, 5)   # gaps
        step[(kind >= 0.15) & (kind < 0.25)] += rng.uniform(-0.01, 0.01)  # jitter (some within tol)
        t = 12.5 + np.cumsum(step)
        if n and rng.random() < 0.3:
            t[rng.integers(0, n)] = np.nan
        eps.append(t)
    flat = np.concatenate(eps) if eps else np.zeros(0)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    for times, scale in ((flat, 1.0), (None, 1e-9)):
        if times is None:  # the same clock as int64 ns on an epoch (no NaN in integers)
            times = np.round(np.nan_to_num(flat, nan=0.0) * 1e9).astype(np.int64) \
                + 1_700_000_000 * 10**9
        valid, reps = check_timestamps(times, offsets, period=P, tolerance=tol, scale=scale)
        for e, r in enumerate(reps):
            want = loop_report(times[offsets[e]:offsets[e + 1]], P, tol, scale)
            for c in CATEGORIES:
                np.testing.assert_array_equal(getattr(r, c), want[c],
                                              err_msg=f"seed {seed} episode {e} {c} {scale}")
            bad = sorted(want["nan"] + want["duplicate"] + want["backward"])
            np.testing.assert_array_equal(np.flatnonzero(~valid[offsets[e]:offsets[e + 1]]), bad)


def test_high_rate_steps_are_not_duplicates():
    """A 10 kHz clock steps by exactly LeRobot's default tolerance (1e-4 s): with the rate
    known, those steps are samples, not duplicates; a repeated stamp still is one."""
    t = np.arange(50) * 1e-4
    t[20] = t[19]
    valid, (rep,) = check_timestamps(t, [0, 50], period=1e-4, tolerance=1e-4)
    np.testing.assert_array_equal(rep.duplicate, [20])
    np.testing.assert_array_equal(np.flatnonzero(~valid), [20])
    from timestamp_reference import loop_report

    want = loop_report(t, 1e-4, 1e-4)
    for c in CATEGORIES:
        np.testing.assert_array_equal(getattr(rep, c), want[c], err_msg=c)
