"""``voxelize``: dense voxel grids of batched point clouds (count, occupancy, sum, mean, max).

The contract (the grid, dropped points, modes, determinism, CPU/GPU agreement, errors) is
docs/ops/voxelize.md; the public function's docstring summarises it. This module holds the
argument checks, the abstract evaluation, the public function and the ``FfiOp`` registration
(CUDA targets ``robocache_voxelize`` for count/occupancy/max and ``robocache_voxelize_binned``,
with a workspace, for sum/mean); the jnp twin is ``voxelize_twin`` (reductions in ``reduce``,
the index rule in ``grid``).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from .._core import extension as _extension
from .._core.batching import batch_size
from .._core.codes import VOXELIZE_MODES as MODES
from .._core.contract import (broadcast_leading, check_choice, check_lengths, to_canonical,
                              valid_lengths)
from .._core.eager import staged
from .._core.primitive import FfiOp
from .sizing import warn_voxelize
from ..jax_compat import ShapedArray
from .grid import GridSpec, check_features, check_points, grid_spec
from .voxelize_twin import voxelize_twin

__all__ = ["voxelize"]

FEATURE_MODES = ("sum", "mean", "max")
FEATURE_DTYPES = (jnp.float32, jnp.bfloat16)
_BINNED_MODES = (MODES["sum"], MODES["mean"])


# -- abstract evaluation (canonical operands) -------------------------------
def _voxelize_abstract_eval(points, features, lengths, *, mode: int, grid: GridSpec):
    B = batch_size(points, features, lengths)
    if mode == MODES["count"]:
        return (ShapedArray((B,) + grid.shape, jnp.int32),)
    if mode == MODES["occupancy"]:
        return (ShapedArray((B,) + grid.shape, jnp.float32),)
    return (ShapedArray((B,) + grid.shape + (features.shape[-1],), features.dtype),)


# -- the public function -------------------------------------------------------
def voxelize(points, features=None, *, voxel_size, point_range, mode: str = "count",
             lengths=None):
    """Accumulates batched point clouds into dense voxel grids.

    ``voxelize(points, features, voxel_size=..., point_range=..., mode=...)``.
    Full contract: docs/ops/voxelize.md.

    Args:
      points: ``[..., N, 3]`` float32 x, y, z.
      features: ``[..., N, C]`` float32 or bfloat16; required for ``sum``,
        ``mean`` and ``max``, ignored for ``count`` and ``occupancy``.
      voxel_size: a positive float, or 3 (x, y, z).
      point_range: ``(xmin, ymin, zmin, xmax, ymax, zmax)``, max > min. The grid
        is ``(X, Y, Z) = round((max - min) / voxel_size)`` (at least 1, static).
      mode: ``"count"`` (default), ``"occupancy"``, ``"sum"``, ``"mean"`` or
        ``"max"`` (per channel, NaN-propagating, a zero maximum is +0.0).
      lengths: ``[...]`` integer, valid points per cloud (default N; clamped
        into [0, N]); points at index >= lengths are dropped.

    A point's voxel is ``floor((p - min) / voxel_size)`` per axis in float32 (the
    same operations on CPU and GPU); points outside ``[min, max)``, non-finite,
    or whose index falls outside the grid are dropped. Leading dims of points,
    features and lengths broadcast.

    Returns:
      ``count``: int32 ``[..., X, Y, Z]``; ``occupancy``: float32 0/1
      ``[..., X, Y, Z]``; ``sum``/``mean``/``max``: ``[..., X, Y, Z, C]`` in the
      features dtype (accumulated in float32); indexed ``grid[..., x, y, z]``;
      empty voxels are 0. Bitwise deterministic on the GPU; count, occupancy and
      max equal the CPU bit for bit, sum and mean to float32 rounding (the GPU
      sums exactly, then rounds once).

    Raises:
      ValueError / TypeError at trace time for bad shapes, dtypes, modes,
      voxel sizes, ranges, grids with 2**31 voxels or more, and missing features.

    Gradients w.r.t. ``features`` for sum, mean and max (ties: the lowest point
    index), none w.r.t. ``points``. Works under ``jit``, ``vmap``, ``lax.scan``
    and batch sharding.
    """
    check_choice("mode", mode, MODES)
    grid = grid_spec(voxel_size, point_range)
    points = check_points(points)
    N = points.shape[-2]
    named = {"points": points.shape[:-2]}
    if mode in FEATURE_MODES:
        if features is None:
            raise ValueError(f"mode={mode!r} needs features [..., N, C]")
        features = check_features(features, points, FEATURE_DTYPES)
        named["features"] = features.shape[:-2]
    if lengths is not None:
        lengths = check_lengths(lengths)  # clamped inside the staged program
        named["lengths"] = np.shape(lengths)
    lead = tuple(broadcast_leading(named))
    if mode in FEATURE_MODES:
        warn_voxelize(math.prod(lead), N, grid.shape, features.shape[-1],
                      jnp.dtype(features.dtype).itemsize)
    else:
        warn_voxelize(math.prod(lead), N, grid.shape, 1, 4)

    return staged(_voxelize_arrays, points, features if mode in FEATURE_MODES else None, lengths,
                  lead=lead, mode=MODES[mode], grid=grid)


def _voxelize_arrays(points, features, lengths, *, lead, mode, grid):
    """The array work of a checked call: canonical operands, the bind, the grids' shape."""
    N = points.shape[-2]
    operands = [to_canonical(points, lead, points.ndim - 2)]
    if features is not None:
        operands.append(to_canonical(features, lead, features.ndim - 2))
    else:  # placeholder operand: the op always takes one
        operands.append(jnp.zeros((1, N, 0), jnp.float32))
    if lengths is None:
        operands.append(jnp.full((1,), N, jnp.int32))
    else:
        lengths = valid_lengths(lengths, N)
        operands.append(to_canonical(lengths, lead, lengths.ndim))
    (out,) = _voxelize_op.bind(*operands, mode=mode, grid=grid)
    tail = grid.shape if features is None else grid.shape + (features.shape[-1],)
    return out.reshape(lead + tail)


# -- registration ------------------------------------------------------------
def _ffi_attrs(mode: int, grid: GridSpec) -> dict:
    return dict(mode=np.int32(mode), lo=np.asarray(grid.lo, np.float32),
                hi=np.asarray(grid.hi, np.float32), size=np.asarray(grid.size, np.float32))


def _workspace_bytes(points, features, lengths, *, mode: int, grid: GridSpec):
    """Device scratch per cloud of the sum/mean handler (binned points); None for the others."""
    if mode not in _BINNED_MODES:
        return None
    per_cloud = _extension.module_function("voxelize_binned_workspace_per_cloud")
    feature_bytes = features.shape[-1] * features.dtype.itemsize  # rows copied to the scratch
    return per_cloud(batch_size(points, features, lengths), points.shape[1], grid.num_voxels,
                     feature_bytes)


_voxelize_op = FfiOp(
    "voxelize", twin=voxelize_twin, abstract_eval=_voxelize_abstract_eval,
    ffi_target="robocache_voxelize", ffi_attrs=_ffi_attrs,
    # sum/mean bin the points by tiles of the grid: a separate handler, with a scratch
    # workspace; count, occupancy and max scatter atomics into the zeroed grid.
    ffi_target_for=lambda mode, grid: ("robocache_voxelize_binned" if mode in _BINNED_MODES
                                       else "robocache_voxelize"),
    workspace_bytes=_workspace_bytes)
