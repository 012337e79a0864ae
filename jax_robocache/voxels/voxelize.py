"""``voxelize``: dense voxel grids of batched point clouds (count, occupancy, sum, mean, max).

Contract (see README's semantics section):

* ``points [..., N, 3]`` float32; ``features [..., N, C]`` float32 or
  bfloat16 (required by ``sum``, ``mean``, ``max``; ignored by ``count`` and
  ``occupancy``); ``lengths [...]`` integer, valid points per cloud (padded
  batches; default N, clamped into [0, N]). Leading dims broadcast (NumPy
  rules).
* ``voxel_size`` a positive float or 3 floats; ``point_range = (xmin, ymin,
  zmin, xmax, ymax, zmax)`` with max > min; grid shape ``(X, Y, Z) =
  round((max - min) / voxel_size)`` per axis (at least 1), static, with
  fewer than 2**31 voxels.
* Voxel of a point: ``floor((p - min) / voxel_size)`` per axis in float32
  (``jax_robocache._voxel_grid``, shared bit for bit with the CUDA kernel).
  Points with any coordinate outside ``[min, max)`` or non-finite, whose
  index falls outside the grid, or at index >= ``lengths`` are dropped.
* Output indexed ``grid[..., x, y, z]`` (x-major):
  ``count`` int32 ``[..., X, Y, Z]``; ``occupancy`` float32 0/1
  ``[..., X, Y, Z]``; ``sum``, ``mean``, ``max`` ``[..., X, Y, Z, C]`` in the
  features dtype, accumulated in float32 (``mean`` = float32 sum / float32
  count). Empty voxels are 0 in every mode.
* ``max`` is per channel, NaN-propagating (a NaN feature makes its voxel's
  channel NaN, the quiet NaN), and a zero maximum is ``+0.0``.
* GPU results are bitwise identical from run to run in every mode; count,
  occupancy and max equal the CPU results bit for bit, sum and mean to
  float32 rounding: the GPU adds each voxel's features exactly (one IEEE
  addition for two points, integer arithmetic on a 320-bit fixed-point
  accumulator for more, independent of the order of the points) and rounds
  once to float32; the CPU path keeps a float32
  running sum. Any NaN, or +inf with -inf, gives NaN; an intermediate sum
  never overflows on the GPU. One GPU call holds fewer than 2**31 points.
* Gradients with respect to ``features`` for ``sum``, ``mean`` and ``max``
  (to the point that attains the maximum; ties: the lowest point index), from
  the jnp twin's JVP. ``points`` only select voxels: no gradient flows to them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._core import extension as _extension
from . import reduce as _voxel_reduce
from .._core.codes import VOXELIZE_MODES
from .._core.contract import broadcast_leading, check_choice, to_canonical, valid_lengths
from .._core.primitive import FfiOp
from .grid import GridSpec, check_features, check_points, grid_spec, voxel_index
from ..jax_compat import ShapedArray

__all__ = ["voxelize"]

MODES = VOXELIZE_MODES
FEATURE_MODES = ("sum", "mean", "max")
FEATURE_DTYPES = (jnp.float32, jnp.bfloat16)
_BINNED_MODES = (MODES["sum"], MODES["mean"])
_FEATURE_REDUCTIONS = {MODES["sum"]: _voxel_reduce.feature_sum,
                       MODES["mean"]: _voxel_reduce.feature_mean,
                       MODES["max"]: _voxel_reduce.feature_max}


def _num_clouds(*operands) -> int:
    """Operands carry B or 1 clouds on axis 0: B (0 if any has none)."""
    sizes = [x.shape[0] for x in operands]
    return 0 if 0 in sizes else max(sizes)


# -- the jnp twin (canonical operands) ---------------------------------------
def _voxelize_twin(points, features, lengths, *, mode: int, grid: GridSpec):
    """points [Bp,N,3], features [Bf,N,C] ([1,N,0] for count/occupancy), lengths [Bl]."""
    B = _num_clouds(points, features, lengths)
    N = points.shape[1]
    V = grid.num_voxels

    def one_cloud(p, f, n):
        _, keep, vid = voxel_index(p, grid)
        keep = keep & (jnp.arange(N) < jnp.clip(n, 0, N))
        seg = jnp.where(keep, vid, V)
        if mode == MODES["count"]:
            return _voxel_reduce.count(seg, V).reshape(grid.shape)
        if mode == MODES["occupancy"]:
            return _voxel_reduce.occupancy(seg, V).reshape(grid.shape)
        out = _FEATURE_REDUCTIONS[mode](seg, f, V).astype(f.dtype)
        return out.reshape(grid.shape + (f.shape[-1],))

    if B == 0:
        (aval,) = _voxelize_abstract_eval(points, features, lengths, mode=mode, grid=grid)
        return (jnp.zeros(aval.shape, aval.dtype),)
    operands = (points, features, lengths)
    axes = tuple(0 if x.shape[0] == B and B != 1 else None for x in operands)
    squeezed = [x if ax == 0 else x[0] for x, ax in zip(operands, axes)]
    return (jax.vmap(one_cloud, in_axes=axes, axis_size=B)(*squeezed),)


def _voxelize_abstract_eval(points, features, lengths, *, mode: int, grid: GridSpec):
    B = _num_clouds(points, features, lengths)
    if mode == MODES["count"]:
        return (ShapedArray((B,) + grid.shape, jnp.int32),)
    if mode == MODES["occupancy"]:
        return (ShapedArray((B,) + grid.shape, jnp.float32),)
    return (ShapedArray((B,) + grid.shape + (features.shape[-1],), features.dtype),)


def _ffi_attrs(mode: int, grid: GridSpec) -> dict:
    return dict(mode=np.int32(mode), lo=np.asarray(grid.lo, np.float32),
                hi=np.asarray(grid.hi, np.float32), size=np.asarray(grid.size, np.float32))


def _workspace_bytes(points, features, lengths, *, mode: int, grid: GridSpec):
    """Device scratch per cloud of the sum/mean handler (binned points); None for the others."""
    if mode not in _BINNED_MODES:
        return None
    per_cloud = _extension.module_function("voxelize_binned_workspace_per_cloud")
    feature_bytes = features.shape[-1] * features.dtype.itemsize  # rows copied to the scratch
    return per_cloud(_num_clouds(points, features, lengths), points.shape[1], grid.num_voxels,
                     feature_bytes)


_voxelize_op = FfiOp(
    "voxelize", twin=_voxelize_twin, abstract_eval=_voxelize_abstract_eval,
    ffi_target="robocache_voxelize", ffi_attrs=_ffi_attrs,
    # sum/mean bin the points by tiles of the grid: a separate handler, with a scratch
    # workspace; count, occupancy and max scatter atomics into the zeroed grid.
    ffi_target_for=lambda mode, grid: ("robocache_voxelize_binned" if mode in _BINNED_MODES
                                       else "robocache_voxelize"),
    workspace_bytes=_workspace_bytes)


# -- the public function -------------------------------------------------------
def voxelize(points, features=None, *, voxel_size, point_range, mode: str = "count",
             lengths=None):
    """Accumulates batched point clouds into dense voxel grids.

    Args:
      points: ``[..., N, 3]`` float32 x, y, z.
      features: ``[..., N, C]`` float32 or bfloat16; required for ``sum``,
        ``mean`` and ``max``, ignored for ``count`` and ``occupancy``.
      voxel_size: a positive float, or 3 (x, y, z).
      point_range: ``(xmin, ymin, zmin, xmax, ymax, zmax)``, max > min.
      mode: ``"count"``, ``"occupancy"``, ``"sum"``, ``"mean"`` or ``"max"``.
      lengths: ``[...]`` integer, valid points per cloud (default N; clamped
        into [0, N]); points at index >= lengths are dropped.

    Returns:
      ``count``: int32 ``[..., X, Y, Z]``; ``occupancy``: float32 0/1
      ``[..., X, Y, Z]``; ``sum``/``mean``/``max``: ``[..., X, Y, Z, C]`` in
      the features dtype. Indexed ``grid[..., x, y, z]`` with
      ``(X, Y, Z) = round((max - min) / voxel_size)``. See the module
      docstring for the complete semantics.

    Raises:
      ValueError / TypeError at trace time for bad shapes, dtypes, modes,
      voxel sizes, ranges, grids with 2**31 voxels or more, and missing features.
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
        lengths = valid_lengths(lengths, N)
        named["lengths"] = lengths.shape
    lead = tuple(broadcast_leading(named))

    operands = [to_canonical(points, lead, points.ndim - 2)]
    if mode in FEATURE_MODES:
        operands.append(to_canonical(features, lead, features.ndim - 2))
        C = features.shape[-1]
    else:  # placeholder operand: the op always takes one
        operands.append(jnp.zeros((1, N, 0), jnp.float32))
        C = None
    if lengths is None:
        operands.append(jnp.full((1,), N, jnp.int32))
    else:
        operands.append(to_canonical(lengths, lead, lengths.ndim))
    (out,) = _voxelize_op.bind(*operands, mode=MODES[mode], grid=grid)
    tail = grid.shape if C is None else grid.shape + (C,)
    return out.reshape(lead + tail)


def backend(platform: str | None = None) -> str:
    """What ``voxelize`` lowers to on ``platform``: ``"cuda-ffi"`` or ``"jnp"``."""
    return _voxelize_op.backend(platform)
