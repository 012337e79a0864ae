"""check_timestamps on hand-made clocks (float seconds, int64 ns, NaN, empty episodes)."""

from __future__ import annotations

import numpy as np
import pytest

from jax_robocache.io.diagnostics import check_timestamps


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
