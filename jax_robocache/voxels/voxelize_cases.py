"""The case catalogue of ``voxelize``: its random inputs, for every consumer (see _core/cases.py).

Generators: ``clouds`` (points around a range: outside it, NaN/inf, exactly
on voxel faces and on the range's max; features with ties; ragged lengths)
and ``uniform_cube`` (points uniform in a cube 2% larger than the grid's
range, every point valid: the inputs of the simple baselines).

Cases: one per mode (``clouds`` on ``VOXEL`` / ``RANGE``, arrays ``points``,
``features``, ``lengths``), ``count_points_only`` (no features, default
lengths) and ``uniform`` (``uniform_cube`` on a cubic grid of ``grid`` cells a side).
"""

from __future__ import annotations

import functools

import numpy as np

from .._core.cases import Call, Case, sized
from .grid import grid_spec
from .voxelize import voxelize

#: (X, Y, Z) = (8, 8, 5); 0.2 is not exact in float32, so lattice points test the float32 rule.
VOXEL = (0.25, 0.5, 0.2)
RANGE = (-1.0, -2.0, 0.0, 1.0, 2.0, 1.0)
MODES = ("count", "occupancy", "sum", "mean", "max")
SIZES = {"small": dict(B=2, N=80, C=2, grid=8), "large": dict(B=3, N=20000, C=4, grid=64)}


def clouds(rng, B, N, C, *, voxel=VOXEL, prange=RANGE, dtype=np.float32, outside=False,
           nan_features=0.0):
    """points [B, N, 3] with out-of-range, NaN/inf, lattice and range-boundary points
    (``outside``: every point beyond the range's max instead); features [B, N, C] with
    repeated values (ties) and a fraction ``nan_features`` of NaN; lengths [B] ragged
    (first = N)."""
    lo, hi = np.asarray(prange[:3]), np.asarray(prange[3:])
    size = np.broadcast_to(np.asarray(voxel, np.float64), (3,))
    shape = np.asarray(grid_spec(voxel, prange).shape)
    span = hi - lo
    if outside:
        pts = hi + rng.uniform(0.0, 1.0, (B, N, 3)) * span
    else:
        pts = rng.uniform(lo - 0.15 * span, hi + 0.15 * span, (B, N, 3))
        lattice = lo + rng.integers(0, shape + 1, (B, N, 3)) * size  # faces, max included
        pts = np.where(rng.random((B, N, 3)) < 0.3, lattice, pts)
        special = rng.random((B, N, 3))
        pts[special < 0.02] = np.nan
        pts[(special >= 0.02) & (special < 0.03)] = np.inf
        pts[(special >= 0.03) & (special < 0.04)] = -np.inf
    pts = pts.astype(np.float32)
    features = rng.normal(size=(B, N, C)) * 3
    features = np.where(rng.random((B, N, C)) < 0.2, np.round(features), features)  # ties, zeros
    features = features.astype(np.float32)
    if nan_features:
        features[rng.random((B, N, C)) < nan_features] = np.nan
    lengths = rng.integers(0, N + 1, B).astype(np.int32)
    lengths[:1] = N
    return pts, features.astype(dtype), lengths


def uniform_cube(rng, B, N, C, *, extent=1.0):
    """points [B, N, 3] uniform in [-1.02, 1.02) * extent, features [B, N, C] N(0, 1) (None
    when C is None), lengths [B] = N."""
    points = rng.uniform(-1.02 * extent, 1.02 * extent, (B, N, 3)).astype(np.float32)
    lengths = np.full((B,), N, np.int32)
    features = None if C is None else rng.standard_normal((B, N, C), np.float32)
    return points, features, lengths


def cube_grid(grid: int, extent=1.0) -> dict:
    """voxel_size / point_range of a cubic grid of ``grid`` cells a side over [-extent, extent)."""
    return dict(voxel_size=2 * extent / grid, point_range=(-extent,) * 3 + (extent,) * 3)


def _call(arrays, *, mode, voxel_size, point_range):
    options = dict(mode=mode, voxel_size=voxel_size, point_range=point_range)

    def fn(points, features=None, lengths=None):
        return voxelize(points, features, lengths=lengths, **options)
    return Call(fn, arrays, tuple(arrays), options)


def _clouds_case(rng, size="small", *, mode, features=True, lengths=True, voxel_size=VOXEL,
                 point_range=RANGE, dtype=np.float32, outside=False, nan_features=0.0,
                 **overrides):
    """``clouds`` around the grid; ``features`` / ``lengths`` False: not passed."""
    p = sized(SIZES, size, overrides)
    points, feats, lens = clouds(rng, p["B"], p["N"], p["C"], voxel=voxel_size,
                                 prange=point_range, dtype=dtype, outside=outside,
                                 nan_features=nan_features)
    arrays = dict(points=points, features=feats, lengths=lens)
    if not features:
        del arrays["features"]
    if not lengths:
        del arrays["lengths"]
    return _call(arrays, mode=mode, voxel_size=voxel_size, point_range=point_range)


def _uniform_case(rng, size="small", *, mode="count", **overrides):
    p = sized(SIZES, size, overrides)
    feature_mode = mode in ("sum", "mean", "max")
    points, feats, lens = uniform_cube(rng, p["B"], p["N"], p["C"] if feature_mode else None)
    arrays = dict(points=points, features=feats, lengths=lens)
    if not feature_mode:
        del arrays["features"]
    return _call(arrays, mode=mode, **cube_grid(p["grid"]))


#: name -> Case (see the module docstring).
CASES = {mode: Case(mode, functools.partial(_clouds_case, mode=mode)) for mode in MODES}
CASES["count_points_only"] = Case("count_points_only", functools.partial(
    _clouds_case, mode="count", features=False, lengths=False))
CASES["uniform"] = Case("uniform", _uniform_case)
