"""sensor_clouds: the benchmark's sensor-like clouds are plausible, in sensor order, and cheap
in the smoke suite."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jax_robocache.voxels import sensor_clouds as sc
from jax_robocache.voxels.grid import grid_spec

ROOT = Path(__file__).resolve().parents[2]
VLP16 = ROOT / "tests" / "data" / "vlp16.npz"


def test_lidar_scan_kitti_density_and_geometry():
    points, intensity, ring = sc.lidar_scan(0, order="ring")
    assert 110_000 <= len(points) <= 64 * 2000  # KITTI: ~120k returns of 64 x ~2000 firings
    assert points.dtype == intensity.dtype == np.float32 and intensity.shape == (len(points), 1)
    r = np.linalg.norm(points.astype(np.float64), axis=1)
    assert r.max() <= 120.5 and r.min() > 1.0
    assert points[:, 2].min() >= sc.GROUND_Z - 0.15 and np.all((intensity >= 0) & (intensity <= 1))
    # the lowest beam (-24.8 deg) sees the ground 1.73 / sin(24.8 deg) = 4.12 m away where no
    # car stands in the way: its median range and height say so
    low = ring == 0
    np.testing.assert_allclose(np.median(r[low]), 1.73 / np.sin(np.deg2rad(24.8)), atol=0.05)
    np.testing.assert_allclose(np.median(points[low, 2]), sc.GROUND_Z, atol=0.05)
    # ring order: beam by beam, azimuth increasing within a beam
    assert np.all(np.diff(ring) >= 0) and set(np.unique(ring)) == set(range(64))
    az = np.arctan2(points[low, 1], points[low, 0])
    assert np.mean(np.diff(az) > 0) > 0.99


def test_lidar_column_order_is_firing_by_firing():
    points, _, ring = sc.lidar_scan(0, order="column")
    ring_points, _, _ = sc.lidar_scan(0, order="ring")
    assert abs(len(points) - len(ring_points)) < 0.01 * len(points)  # same scene, same dropout
    firing = np.cumsum(np.r_[1, np.diff(ring) <= 0])  # a new firing starts when the beam resets
    assert 1900 <= firing[-1] <= 2000
    with pytest.raises(ValueError, match="order"):
        sc.lidar_scan(0, order="spiral")


def test_rgbd_frame_pixel_order_and_colours():
    points, colours = sc.rgbd_frame(0, width=160, height=120, focal=131.25)
    assert len(points) == 160 * 120  # a closed room: every pixel has a depth in range
    assert colours.shape == (len(points), 3) and np.all((colours >= 0) & (colours <= 1))
    lo, hi = sc.ROOM[:, :3].min(0), sc.ROOM[:, 3:6].max(0)
    assert np.all(points >= lo - 0.05) and np.all(points <= hi + 0.05)
    # pixel order: horizontally adjacent pixels are centimetres apart, random pairs metres
    step = np.linalg.norm(np.diff(points.reshape(120, 160, 3), axis=1), axis=-1)
    rng = np.random.default_rng(0)
    random_pairs = np.linalg.norm(points[rng.permutation(len(points))] - points, axis=1)
    assert np.median(step) < 0.05 < 0.5 < np.median(random_pairs)


def test_order_gives_long_runs_in_one_voxel_shuffling_none():
    for source, B in (("lidar", 2), ("rgbd", 1)):
        grid = sc.GRIDS[source]
        ordered = sc.sensor_batch(source, B)
        mixed = sc.sensor_batch(source, B, np.random.default_rng(1), shuffle=True)
        for b in range(B):
            n = ordered[2][b]
            runs = sc.mean_run_length(ordered[0][b, :n], (grid["voxel_size"],) * 3,
                                      grid["point_range"])
            shuffled_runs = sc.mean_run_length(mixed[0][b, :n], (grid["voxel_size"],) * 3,
                                               grid["point_range"])
            assert runs >= 1.8 and shuffled_runs < 1.05, (source, b, runs, shuffled_runs)


def test_mean_run_length_counts_runs():
    pts = np.array([[0.1, 0.1, 0.1], [0.2, 0.1, 0.1], [1.5, 0.1, 0.1], [0.1, 0.1, 0.1],
                    [9.0, 9.0, 9.0], [9.0, 9.0, 9.0]])  # runs: 2, 1, 1, and two outside
    assert sc.mean_run_length(pts, (1.0,) * 3, (0, 0, 0, 4, 4, 4)) == 6 / 5


def test_vlp16_in_recorded_order_and_batches():
    points, intensity, ring = sc.load_vlp16(VLP16)
    raw = np.load(VLP16)["xyzil"]
    np.testing.assert_array_equal(points, raw[:, :3])
    np.testing.assert_array_equal(ring, raw[:, 4])
    p, f, lengths = sc.sensor_batch("vlp16", 3, vlp16_path=VLP16)
    assert p.shape == (3, len(raw), 3) and f.shape == (3, len(raw), 4)
    np.testing.assert_array_equal(lengths, len(raw))
    np.testing.assert_array_equal(f[1, :, 3], raw[:, 3] / np.float32(255))
    with pytest.raises(ValueError):  # read-only: the cache's arrays are shared
        p[0, 0, 0] = 1


def test_batch_pads_and_shuffled_permutes_each_cloud():
    rng = np.random.default_rng(2)
    clouds = [(rng.normal(size=(n, 3)).astype(np.float32),
               rng.normal(size=(n, 2)).astype(np.float32)) for n in (5, 9)]
    points, features, lengths = sc.batch(clouds)
    assert points.shape == (2, 9, 3) and list(lengths) == [5, 9]
    assert np.all(points[0, 5:] == 0) and np.all(features[0, 5:] == 0)
    sp, sf, sl = sc.shuffled(points, features, lengths, np.random.default_rng(3))
    for b, n in enumerate(lengths):
        rows = np.concatenate([points[b, :n], features[b, :n]], 1)
        srows = np.concatenate([sp[b, :n], sf[b, :n]], 1)
        np.testing.assert_array_equal(np.sort(rows, axis=0), np.sort(srows, axis=0))
        np.testing.assert_array_equal(sp[b, n:], points[b, n:])
    assert not np.array_equal(sp[1], points[1])


def test_smoke_suites_stay_small_and_fast():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from suites import points_to_voxels, voxelize
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    start = time.perf_counter()
    for suite in (voxelize, points_to_voxels):
        for case in suite.cases("smoke"):
            operands = case.make_inputs(np.random.default_rng(0))
            assert operands[0].size <= 3 * 10_000, (case.name, operands[0].shape)
            if case.op == "voxelize" and "source" in case.params:
                cells = np.prod([int(n) for n in case.params["grid"].split("x")])
                assert cells <= 10_000, (case.name, case.params)
    assert time.perf_counter() - start < 30  # inputs built in well under a second unloaded
    # the headline cases are in quick with the goals; shuffled ones carry none
    quick = {c.name: c for c in voxelize.cases("quick")}
    assert quick["lidar_B8_ordered_mean"].goal == ("vs_jnp_min", 3.0)
    assert quick["rgbd_B8_ordered_count"].goal == ("vs_jnp_min", 3.0)
    assert quick["vlp16_B8_shuffled_mean"].goal is None
    assert "1M_128_count" in quick
    p2v = {c.name: c for c in points_to_voxels.cases("quick")}
    assert p2v["lidar_B8_ordered"].goal == ("vs_jnp_min", 2.0)
    assert "lidar_B32_ordered" in p2v and "kitti_250k" in p2v


def test_grids_are_what_the_docstring_says():
    assert grid_spec(**sc.GRIDS["lidar"]).shape == (200, 200, 12)
    assert grid_spec(**sc.GRIDS["rgbd"]).shape == (120, 100, 60)
    assert grid_spec(**sc.GRIDS["vlp16"]).shape == (200, 200, 16)
