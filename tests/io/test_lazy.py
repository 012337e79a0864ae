"""Lazy row views: any contiguous slice equals the same slice of the materialised numpy array."""

from __future__ import annotations

import numpy as np
import pytest

from jax_robocache.io.lazy import Concatenated, RowRuns, Rows2D


def _random_view(rng):
    parts = [rng.normal(size=(int(n), 2, 3)) for n in rng.integers(0, 9, rng.integers(1, 6))]
    parts[0] = rng.normal(size=(3, 2, 3))  # at least one row somewhere
    cat = Concatenated([Rows2D(p) for p in parts])
    full = np.concatenate([p.reshape(len(p), 6) for p in parts])
    k = rng.integers(1, 6)
    starts = rng.integers(0, len(full), k)
    stops = np.minimum(starts + rng.integers(0, 7, k), len(full))
    runs = RowRuns(cat, starts, stops)
    want = np.concatenate([full[a:b] for a, b in zip(starts, stops)])
    return cat, full, runs, want


@pytest.mark.parametrize("seed", range(20))
def test_slices_match_numpy(seed):
    rng = np.random.default_rng(seed)
    cat, full, runs, want = _random_view(rng)
    for view, ref in ((cat, full), (runs, want)):
        assert view.shape == ref.shape and view.dtype == ref.dtype
        np.testing.assert_array_equal(np.asarray(view), ref, err_msg=f"seed {seed}")
        for _ in range(10):
            a, b = sorted(rng.integers(-2, len(ref) + 3, 2))
            np.testing.assert_array_equal(view[a:b], ref[a:b], err_msg=f"seed {seed} {a}:{b}")
        if len(ref):
            np.testing.assert_array_equal(view[-1], ref[-1])
            np.testing.assert_array_equal(view[:, 1], ref[:, 1])


def test_refusals():
    v = Rows2D(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="step"):
        v[::2]
    with pytest.raises(IndexError):
        v[4]
    with pytest.raises(TypeError):
        v[[0, 1]]
    with pytest.raises(ValueError, match="width or dtype"):
        Concatenated([Rows2D(np.zeros((2, 3))), Rows2D(np.zeros((2, 4)))])
    with pytest.raises(ValueError, match="out of range"):
        RowRuns(v, [0], [5])
    assert Rows2D(np.arange(5)).shape == (5, 1)


def test_as_float32_exact_or_refused():
    from jax_robocache.io import DatasetError
    from jax_robocache.io.lazy import AsFloat32

    small = Rows2D(np.arange(-300, 300, dtype=np.int16).reshape(-1, 2))
    np.testing.assert_array_equal(np.asarray(AsFloat32(small)),
                                  np.arange(-300, 300).reshape(-1, 2).astype(np.float32))
    wide = np.array([[1], [2**24], [2**24 + 1], [3]], np.int64)
    v = AsFloat32(Rows2D(wide), name="task_index")
    np.testing.assert_array_equal(v[:2], [[1.0], [2.0**24]])
    with pytest.raises(DatasetError, match=r"task_index: value 16777217 at row 2"):
        v[1:4]
    with pytest.raises(TypeError):
        AsFloat32(Rows2D(np.zeros((2, 2))))
