"""Voxel index rules shared by ``voxelize`` and ``points_to_voxels``.

* ``point_range = (xmin, ymin, zmin, xmax, ymax, zmax)``; ``voxel_size`` a
  float or 3 floats, all positive.
* Grid shape ``(X, Y, Z) = round((max - min) / voxel_size)`` per axis (Python
  float64 arithmetic, at trace time), each at least 1.
* Voxel of a point: ``floor((p - min) / voxel_size)`` per axis, computed in
  float32 exactly as written (subtract, IEEE divide, floor) on every backend
  (the CUDA kernels use the same operations: csrc/voxels/voxel_grid.h), so CPU and
  GPU agree bitwise. A point is dropped when any coordinate is outside
  ``[min, max)``, is non-finite, or its index falls outside the grid.
* Linear voxel id ``(x * Y + y) * Z + z`` (x-major); grids whose voxel count
  does not fit in int32 are refused at trace time.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple, Sequence

import jax.numpy as jnp
import numpy as np

from .._core.contract import as_jax, check_dtype, check_min_rank


class GridSpec(NamedTuple):
    lo: tuple[float, float, float]  # float32-rounded minimum corner
    hi: tuple[float, float, float]  # float32-rounded maximum corner
    size: tuple[float, float, float]  # float32-rounded voxel size
    shape: tuple[int, int, int]  # (X, Y, Z)

    @property
    def num_voxels(self) -> int:
        return int(math.prod(self.shape))


def grid_spec(voxel_size, point_range: Sequence[float]) -> GridSpec:
    """Validates ``voxel_size``/``point_range`` and returns the static grid (trace-time errors).
    Cached per value for numbers and tuples / lists of numbers (an eager call's cost)."""
    key = (_hashable(voxel_size), _hashable(point_range))
    if key[0] is None or key[1] is None:
        return _grid_spec(voxel_size, point_range)
    return _grid_spec_cached(*key)


def _hashable(x):
    """A number or a flat tuple / list of numbers as a hashable key (type included), else
    None."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return (type(x).__name__, x)
    if isinstance(x, (tuple, list)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in x):
        return ("seq", type(x)) + tuple((type(v).__name__, v) for v in x)
    return None


@functools.lru_cache(maxsize=256)
def _grid_spec_cached(voxel_size, point_range) -> GridSpec:
    unpack = lambda k: k[1] if k[0] != "seq" else k[1](v for _, v in k[2:])  # noqa: E731
    return _grid_spec(unpack(voxel_size), unpack(point_range))


def _grid_spec(voxel_size, point_range) -> GridSpec:
    if np.ndim(voxel_size) not in (0, 1) or np.size(voxel_size) not in (1, 3):
        raise ValueError(f"voxel_size must be a float or 3 floats, got {voxel_size!r}")
    size = np.broadcast_to(np.asarray(voxel_size, np.float64), (3,))
    if not np.all(np.isfinite(size)) or np.any(size <= 0):
        raise ValueError(f"voxel_size must be positive and finite, got {voxel_size!r}")
    rng = np.asarray(point_range, np.float64)
    if rng.shape != (6,):
        raise ValueError("point_range must be (xmin, ymin, zmin, xmax, ymax, zmax), got "
                         f"{point_range!r}")
    lo, hi = rng[:3], rng[3:]
    if not (np.all(np.isfinite(rng)) and np.all(hi > lo)):
        raise ValueError(f"point_range must be finite with max > min on every axis, got "
                         f"{point_range!r}")
    shape = tuple(int(max(1, round(float(d)))) for d in (hi - lo) / size)
    if math.prod(shape) >= 2**31:
        raise ValueError(f"grid {shape} has {math.prod(shape)} voxels, more than int32 can index;"
                         " use a larger voxel_size or a smaller point_range")
    f32 = lambda v: tuple(float(np.float32(x)) for x in v)  # noqa: E731
    return GridSpec(f32(lo), f32(hi), f32(size), shape)


def voxel_index(points, spec: GridSpec):
    """points [..., N, 3] float32 -> (ijk [..., N, 3] int32, keep [..., N] bool, vid [..., N] int32).

    ``vid`` is the x-major linear voxel id, -1 for dropped points.
    """
    p = points.astype(jnp.float32)
    lo = jnp.asarray(spec.lo, jnp.float32)
    hi = jnp.asarray(spec.hi, jnp.float32)
    size = jnp.asarray(spec.size, jnp.float32)
    # XLA rewrites a division by a broadcast scalar into a multiplication by its
    # reciprocal, which rounds differently from the IEEE division of the CUDA
    # kernels (points on cell faces would change cells). A divisor that depends
    # on the data cannot be rewritten; NaN points stay NaN and are dropped anyway.
    divisor = jnp.where(jnp.isnan(p), p, size)
    f = jnp.floor((p - lo) / divisor)
    dims = jnp.asarray(spec.shape, jnp.float32)
    keep = jnp.all((p >= lo) & (p < hi) & (f >= 0) & (f < dims), axis=-1)
    ijk = jnp.where(keep[..., None], f, 0).astype(jnp.int32)
    X, Y, Z = spec.shape
    vid = jnp.where(keep, (ijk[..., 0] * Y + ijk[..., 1]) * Z + ijk[..., 2], -1)
    return ijk, keep, vid.astype(jnp.int32)


def check_points(points):
    """``points`` as a float32 ``[..., N, 3]`` array; trace-time errors name the argument."""
    points = as_jax(points)
    check_min_rank("points", points, 2, "[..., N, 3]")
    if points.shape[-1] != 3:
        raise ValueError(f"points must have shape [..., N, 3], got shape {tuple(points.shape)}")
    check_dtype("points", points, (jnp.float32,),
                "; cast explicitly (the voxel rule is defined in float32)")
    return points


def check_features(features, points, dtypes):
    """``features`` as a ``[..., N, C]`` array of one of ``dtypes``, N matching ``points``."""
    features = as_jax(features)
    check_min_rank("features", features, 2, "[..., N, C]")
    check_dtype("features", features, dtypes)
    if features.shape[-2] != points.shape[-2]:
        raise ValueError(f"features {tuple(features.shape)} must have N={points.shape[-2]} points "
                         f"on axis -2, like points {tuple(points.shape)}")
    return features
