"""The case catalogue of ``points_to_voxels``: its random inputs, for every consumer.

(What a catalogue is: _core/cases.py.) Generators: ``make_points`` (points
around ``RANGE``: some outside, some exactly on cell faces, some NaN/inf;
optionally in a few dense clusters that overflow the voxels) and
``lidar_cloud`` (one spinning-LiDAR-like cloud: rings, ground plane,
obstacles). Lengths are drawn last (ragged, the first cloud full) unless
given as an override.

Cases (arrays ``points``, ``features``, ``lengths``): ``uniform`` (roomy
rows), ``overflow`` (clusters: rows and slots run out), ``pillars_xyz`` (one
z cell, no features), ``xyz_only`` (no features, default lengths),
``clouds`` (voxelize's ``clouds`` around any grid: NaN/inf, faces, NaN
features, everything outside) and ``lidar`` (``lidar_cloud`` per cloud on a
KITTI-like grid).
"""

from __future__ import annotations

import functools

import numpy as np

from .._core.cases import Call, Case, sized
from .points_to_voxels import points_to_voxels
from .voxelize_cases import clouds

RANGE = (-1.0, -2.0, -0.5, 1.4, 2.0, 0.7)
SIZE = (0.3, 0.5, 0.4)
PILLAR_SIZE = (0.3, 0.5, 1.2)  # one z cell
#: KITTI-like voxels and PointPillars pillars for LiDAR clouds (ranges in metres).
KITTI = dict(voxel_size=(0.05, 0.05, 0.1), point_range=(0.0, -40.0, -3.0, 70.4, 40.0, 1.0),
             max_voxels=40000, max_points_per_voxel=32)
PILLARS = dict(voxel_size=(0.16, 0.16, 4.0), point_range=(0.0, -39.68, -3.0, 69.12, 39.68, 1.0),
               max_voxels=12000, max_points_per_voxel=32)
SIZES = {"small": dict(B=2, N=80), "large": dict(B=3, N=20000)}


def make_points(rng, lead, N, *, clustered=False, bad=0.05):
    """Random points around RANGE: some outside, some exactly on cell faces, some NaN/inf."""
    lo, hi = np.array(RANGE[:3]), np.array(RANGE[3:])
    if clustered:  # few dense clusters: voxels overflow max_points_per_voxel
        centers = rng.uniform(lo, hi, (4, 3))
        pts = centers[rng.integers(0, 4, lead + (N,))] + rng.normal(0, 0.05, lead + (N, 3))
    else:
        pts = rng.uniform(lo - 0.3, hi + 0.3, lead + (N, 3))
    on_face = rng.random(lead + (N, 3)) < 0.15
    faces = lo + rng.integers(-1, 10, lead + (N, 3)) * np.array(SIZE)
    pts = np.where(on_face, faces, pts).astype(np.float32)
    broken = rng.random(lead + (N,)) < bad
    axis = rng.integers(0, 3, lead + (N,))
    vals = rng.choice(np.array([np.nan, np.inf, -np.inf], np.float32), lead + (N,))
    for a in range(3):
        pts[..., a] = np.where(broken & (axis == a), vals, pts[..., a])
    return pts


def lidar_cloud(rng, N, rings=64, height=1.73, max_range=80.0):
    """points [N, 3], intensity [N, 1], lengths (a scalar, N): a spinning-LiDAR-like cloud of
    N returns over ``rings`` beams, ground plane and obstacles."""
    elev = np.deg2rad(np.linspace(-24.8, 2.0, rings))[rng.integers(0, rings, N)]
    azim = rng.uniform(-np.pi, np.pi, N)
    ground = np.where(elev < 0, height / np.maximum(np.sin(-elev), 1e-6), np.inf)
    obstacle = np.where(rng.random(N) < 0.4, rng.gamma(2.0, 8.0, N) + 2.0, np.inf)
    r = np.minimum(np.minimum(ground, obstacle), max_range) + rng.normal(0, 0.02, N)
    xyz = np.stack([r * np.cos(elev) * np.cos(azim), r * np.cos(elev) * np.sin(azim),
                    r * np.sin(elev)], axis=-1)
    intensity = rng.uniform(0, 1, (N, 1))
    return xyz.astype(np.float32), intensity.astype(np.float32), np.asarray(N, np.int32)


def _call(arrays, **options):
    def fn(points, features=None, lengths=None):
        return points_to_voxels(points, features, lengths=lengths, **options)
    return Call(fn, arrays, tuple(arrays), options)


def _points_case(rng, size="small", *, clustered, C, voxel_size, max_voxels,
                 max_points_per_voxel, lengths="random", **overrides):
    """make_points, then features [B, N, C] (C None: none), then ragged lengths ("random"),
    none (None: the default, N) or the given array."""
    p = sized(SIZES, size, overrides)
    B, N = p["B"], p["N"]
    arrays = dict(points=make_points(rng, (B,), N, clustered=clustered))
    if C is not None:
        arrays["features"] = rng.normal(size=(B, N, C)).astype(np.float32)
    if isinstance(lengths, str):
        arrays["lengths"] = rng.integers(0, N + 1, B).astype(np.int32)
        arrays["lengths"][:1] = N
    elif lengths is not None:
        arrays["lengths"] = np.asarray(lengths, np.int32)
    return _call(arrays, voxel_size=voxel_size, point_range=RANGE, max_voxels=max_voxels,
                 max_points_per_voxel=max_points_per_voxel)


def _clouds_case(rng, size="small", *, C=1, voxel_size=SIZE, point_range=RANGE, max_voxels=16,
                 max_points_per_voxel=4, dtype=np.float32, outside=False, nan_features=0.0,
                 **overrides):
    """voxelize's ``clouds`` around any grid (C = 0: xyz only, no features passed)."""
    p = sized(SIZES, size, overrides)
    points, features, lengths = clouds(rng, p["B"], p["N"], C, voxel=voxel_size,
                                       prange=point_range, dtype=dtype, outside=outside,
                                       nan_features=nan_features)
    arrays = dict(points=points, features=features, lengths=lengths)
    if not C:
        del arrays["features"]
    return _call(arrays, voxel_size=voxel_size, point_range=point_range, max_voxels=max_voxels,
                 max_points_per_voxel=max_points_per_voxel)


def _lidar_case(rng, size="small", *, grid=KITTI, **overrides):
    p = sized(SIZES, size, overrides)
    drawn = [lidar_cloud(rng, p["N"]) for _ in range(p["B"])]
    points, features, lengths = (np.stack(x) for x in zip(*drawn))
    arrays = dict(points=points, features=features, lengths=lengths)
    return _call(arrays, **grid)


def _case(name, build, **fixed):
    return Case(name, functools.partial(build, **fixed))


#: name -> Case (see the module docstring).
CASES = {c.name: c for c in (
    _case("uniform", _points_case, clustered=False, C=2, voxel_size=SIZE, max_voxels=200,
          max_points_per_voxel=6),
    _case("overflow", _points_case, clustered=True, C=1, voxel_size=SIZE, max_voxels=6,
          max_points_per_voxel=3),
    _case("pillars_xyz", _points_case, clustered=False, C=None, voxel_size=PILLAR_SIZE,
          max_voxels=30, max_points_per_voxel=4),
    _case("xyz_only", _points_case, clustered=True, C=None, voxel_size=SIZE, max_voxels=12,
          max_points_per_voxel=5, lengths=None),
    _case("clouds", _clouds_case),
    _case("lidar", _lidar_case),
)}
