"""Hypothesis fuzzing of voxelize and points_to_voxels against the independent numpy references.

Adversarial clouds: points exactly on voxel and range boundaries, NaN/inf
coordinates, huge coordinates (up to the float32 maximum), duplicates, zero,
negative and too large lengths with garbage past them, lengths=None, empty
clouds and batches, tiny and pillar grids, bfloat16 / float16 / NaN / inf
features. Shapes come from fixed buckets (see fuzz_support); the profile is
short in CI, HYPOTHESIS_PROFILE=long runs 10,000 examples per op (conftest.py).
resample and align: tests/streams/test_streams_fuzz.py.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from references import points_to_voxels as reference_p2v
from references import voxelize as reference_voxel
from exact import assert_identical
from fuzz_support import as_f64, assert_close, counted, jitted, sprinkle
from jax_robocache import points_to_voxels, voxelize

RANGE = (-1.0, -2.0, -0.5, 1.0, 2.0, 0.5)
# (0.25, 0.5, 1.0): one z cell (pillars). The last two are not a whole number of voxels of
# RANGE (2 x 4 x 1): (0.3, 0.45, 0.35) -> 7 x 9 x 3 cells reaching past max (the range check
# alone drops points there), (0.45, 0.3, 0.4) -> 4 x 13 x 2 cells short of max (the cell check).
SIZES = (0.25, 0.5, (0.25, 0.5, 1.0), (0.1, 0.4, 1.0), (0.3, 0.45, 0.35), (0.45, 0.3, 0.4))
SPECIAL = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 3.4e38, -1.0, 1.0, -2.0, 2.0, -0.5,
                    0.5, 0.0, np.nextafter(np.float32(1.0), np.float32(0.0))], np.float32)
#: (B, N, C, features dtype, lengths given); C = 0: points_to_voxels without features.
BUCKETS = ((1, 1, 1, "float32", True), (3, 40, 3, "float32", True), (2, 0, 2, "float32", True),
           (2, 24, 2, "bfloat16", True), (2, 17, 1, "float32", False), (0, 5, 1, "float32", True))
P2V_BUCKETS = BUCKETS[:3] + ((2, 24, 2, "float16", True), (3, 30, 0, "float32", True),
                             (2, 17, 1, "bfloat16", False))
#: (max_voxels, max_points_per_voxel): single slot, overflowing, roomy.
CAPACITIES = ((1, 1), (3, 2), (6, 4), (64, 8))


@st.composite
def clouds(draw, buckets):
    B, N, C, dtype, given_lengths = draw(st.sampled_from(buckets))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pts = rng.uniform(-1.3, 1.3, (B, N, 3)).astype(np.float32) * np.float32([1, 2, 0.5])
    if N:
        grid_pts = np.round(pts / 0.25) * 0.25  # exactly on cell faces and range edges
        snap = rng.random((B, N, 1)) < draw(st.sampled_from([0.0, 0.3, 1.0]))
        pts = np.where(snap, grid_pts, pts).astype(np.float32)
        sprinkle(rng, pts, draw(st.sampled_from([0.0, 0.05, 0.3])), SPECIAL)
        dup = rng.integers(0, N, (B, N // 4))
        pts[:, : N // 4] = np.take_along_axis(pts, dup[..., None], 1)
    feats = rng.normal(size=(B, N, C)) * draw(st.sampled_from([1.0, 1e-3, 100.0]))
    sprinkle(rng, feats, draw(st.sampled_from([0.0, 0.0, 0.05])))
    lengths = rng.integers(-2, N + 3, B).astype(np.int32) if given_lengths else None
    size = draw(st.sampled_from(SIZES))
    return pts, feats.astype(jnp.dtype(dtype)), lengths, size


def _clamped(lengths, pts):
    B, N = pts.shape[:2]
    return np.full(B, N) if lengths is None else np.clip(lengths, 0, N)


@given(clouds(BUCKETS), st.sampled_from(["count", "occupancy", "sum", "mean", "max"]))
@counted
def test_fuzz_voxelize(cloud, mode):
    pts, feats, lengths, size = cloud
    f = feats if mode in ("sum", "mean", "max") else None
    fn = jitted(voxelize, voxel_size=size, point_range=RANGE, mode=mode)
    out = fn(pts, f, lengths=lengths)
    with np.errstate(all="ignore"):
        ref = reference_voxel.voxelize(pts, None if f is None else as_f64(f),
                                       _clamped(lengths, pts), size, RANGE, mode)
    err = f"{mode} {pts.shape} size {size} lengths {lengths}"
    if mode in ("count", "occupancy", "max"):
        assert_identical(as_f64(out), ref, err_msg=err)
    else:
        assert out.dtype == feats.dtype
        assert_close(out, ref, err)


@given(clouds(P2V_BUCKETS), st.sampled_from(CAPACITIES))
@counted
def test_fuzz_points_to_voxels(cloud, capacity):
    pts, feats, lengths, size = cloud
    M, P = capacity
    f = feats if feats.shape[-1] else None
    fn = jitted(points_to_voxels, voxel_size=size, point_range=RANGE, max_voxels=M,
                max_points_per_voxel=P)
    out = fn(pts, f, lengths=lengths)
    with np.errstate(all="ignore"):
        ref = reference_p2v.points_to_voxels(pts, None if f is None else as_f64(f),
                                             _clamped(lengths, pts), size, RANGE, M, P)
    err = f"{pts.shape} M={M} P={P} size {size} lengths {lengths}"
    if not pts.shape[0]:
        assert out.voxels.shape == (0, M, P, 3 + feats.shape[-1]), err
        return
    for name in ("coords", "num_points", "num_voxels", "point_to_voxel"):
        np.testing.assert_array_equal(np.asarray(getattr(out, name)), ref[name],
                                      err_msg=f"{name} {err}")
    assert_identical(out.voxels, ref["voxels"], err_msg=err)
