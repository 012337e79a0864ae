"""Hypothesis fuzzing of the voxel ops against the independent numpy references.

Adversarial clouds: points exactly on voxel and range boundaries, NaN/inf
coordinates, huge coordinates, duplicates, zero and out-of-range lengths, tiny
and pillar grids. (resample and align have their own property tests.) The
profile is short in CI; raise it with HYPOTHESIS_PROFILE=long (10,000 examples).
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import reference_p2v
import reference_voxel
from jax_robocache import points_to_voxels, voxelize

settings.register_profile("ci", max_examples=30, deadline=None)
settings.register_profile("long", max_examples=10_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

RANGE = (-1.0, -2.0, -0.5, 1.0, 2.0, 0.5)
SPECIAL = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, -1.0, 1.0, -2.0, 2.0, -0.5, 0.5, 0.0,
                    np.nextafter(np.float32(1.0), np.float32(0.0))], np.float32)


@st.composite
def clouds(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    B, N, C = draw(st.integers(1, 3)), draw(st.integers(0, 40)), draw(st.integers(1, 3))
    size = draw(st.sampled_from([0.25, 0.5, (0.25, 0.5, 1.0), (0.1, 0.4, 1.0)]))
    pts = rng.uniform(-1.3, 1.3, (B, N, 3)).astype(np.float32) * np.float32([1, 2, 0.5])
    if N:
        grid_pts = np.round(pts / 0.25) * 0.25  # exactly on cell faces
        snap = rng.random((B, N, 1)) < 0.3
        pts = np.where(snap, grid_pts, pts).astype(np.float32)
        odd = rng.random((B, N, 3)) < 0.05
        pts[odd] = rng.choice(SPECIAL, odd.sum())
        dup = rng.integers(0, N, (B, N // 4))
        pts[:, : N // 4] = np.take_along_axis(pts, dup[..., None], 1)
    feats = rng.normal(size=(B, N, C)).astype(np.float32)
    lengths = rng.integers(-2, N + 3, B).astype(np.int32)
    return pts, feats, lengths, size


@given(clouds(), st.sampled_from(["count", "occupancy", "sum", "mean", "max"]))
def test_voxelize_matches_reference(cloud, mode):
    pts, feats, lengths, size = cloud
    f = feats if mode in ("sum", "mean", "max") else None
    out = np.asarray(voxelize(pts, f, voxel_size=size, point_range=RANGE, mode=mode,
                              lengths=lengths))
    ref = reference_voxel.voxelize(pts, f, np.clip(lengths, 0, pts.shape[1]), size, RANGE, mode)
    if mode in ("count", "occupancy", "max"):
        np.testing.assert_array_equal(out, ref)
    else:
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@given(clouds(), st.integers(1, 6), st.integers(1, 4))
def test_points_to_voxels_matches_reference(cloud, max_voxels, max_points):
    pts, feats, lengths, size = cloud
    out = points_to_voxels(pts, feats, voxel_size=size, point_range=RANGE, max_voxels=max_voxels,
                           max_points_per_voxel=max_points, lengths=lengths)
    ref = reference_p2v.points_to_voxels(pts, feats, np.clip(lengths, 0, pts.shape[1]), size,
                                         RANGE, max_voxels, max_points)
    for name in ("coords", "num_points", "num_voxels", "point_to_voxel"):
        np.testing.assert_array_equal(np.asarray(getattr(out, name)), ref[name], err_msg=name)
    v = np.asarray(out.voxels)
    np.testing.assert_array_equal(np.isnan(v), np.isnan(ref["voxels"]))
    np.testing.assert_array_equal(np.nan_to_num(v), np.nan_to_num(ref["voxels"]))
