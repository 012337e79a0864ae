"""``points_to_voxels``: hard voxelization (VoxelNet, PointPillars, SECOND input), static shapes.

The contract (outputs, which points are dropped, ordering, determinism, gradients, errors) is
docs/ops/points_to_voxels.md; the public function's docstring summarises it. This module holds
the argument checks, the abstract evaluation, the public function and the ``FfiOp``
registration (CUDA target ``robocache_points_to_voxels``, with a workspace); the jnp twin is
``points_to_voxels_twin`` (a stable sort by voxel id on the shared index rule of ``grid``).
"""

from __future__ import annotations

import math
import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._core import extension as _extension
from .._core.batching import batch_size
from .._core.contract import broadcast_leading, check_lengths, to_canonical, valid_lengths
from .._core.eager import staged
from .._core.primitive import FfiOp
from .sizing import warn_points_to_voxels
from ..jax_compat import ShapedArray
from .grid import check_features, check_points, grid_spec
from .points_to_voxels_twin import points_to_voxels_twin

__all__ = ["VoxelBatch", "points_to_voxels"]

FEATURE_DTYPES = (jnp.float32, jnp.bfloat16, jnp.float16)


class VoxelBatch(NamedTuple):
    """Output of ``points_to_voxels`` (M = max_voxels, P = max_points_per_voxel)."""

    voxels: jax.Array  # [..., M, P, 3 + C] float32
    coords: jax.Array  # [..., M, 3] int32 (x, y, z), -1 in unused rows
    num_points: jax.Array  # [..., M] int32
    num_voxels: jax.Array  # [...] int32
    point_to_voxel: jax.Array  # [..., N] int32, -1 for dropped points


# -- abstract evaluation (canonical operands) -------------------------------
def _p2v_abstract_eval(points, features, lengths, *, spec, max_voxels, max_points):
    B = batch_size(points, features, lengths)
    N = points.shape[1]
    W = 3 + features.shape[2]
    M, P = max_voxels, max_points
    return (ShapedArray((B, M, P, W), jnp.float32), ShapedArray((B, M, 3), jnp.int32),
            ShapedArray((B, M), jnp.int32), ShapedArray((B,), jnp.int32),
            ShapedArray((B, N), jnp.int32))


# -- the public function -------------------------------------------------------
def _positive_int(name: str, value) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be a positive Python int (static), got "
                        f"{type(value).__name__} {value!r}") from None
    if isinstance(value, bool) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(v)


def points_to_voxels(points, features=None, *, voxel_size, point_range, max_voxels: int,
                     max_points_per_voxel: int, lengths=None) -> VoxelBatch:
    """Hard voxelization: at most ``max_voxels`` voxels of at most ``max_points_per_voxel`` points.

    ``points_to_voxels(points, features, voxel_size=..., point_range=...,
    max_voxels=M, max_points_per_voxel=P)`` -> ``VoxelBatch``. Full contract:
    docs/ops/points_to_voxels.md.

    Args:
      points: ``[..., N, 3]`` float32 point coordinates (x, y, z).
      features: ``[..., N, C]`` per-point features (float32, bfloat16 or float16;
        converted exactly to float32), or None (C = 0).
      voxel_size: a float or 3 floats (x, y, z), positive.
      point_range: ``(xmin, ymin, zmin, xmax, ymax, zmax)``; the grid and the
        voxel of a point follow ``voxelize``'s rule. One z cell gives pillars.
      max_voxels: M, the number of voxel rows (a static Python int >= 1).
      max_points_per_voxel: P, the point slots per row (a static Python int >= 1).
      lengths: ``[...]`` valid points per cloud (padded batches), default N.

    Returns:
      ``VoxelBatch(voxels [..., M, P, 3 + C] float32 (xyz then features, zeros in
      unused slots), coords [..., M, 3] int32 (x, y, z; -1 in unused rows),
      num_points [..., M] int32, num_voxels [...] int32, point_to_voxel [..., N]
      int32 (-1: dropped))``.

    Rows follow the order of each voxel's first kept point; within a row, points
    keep input order and the first P are kept. A point is dropped when it is out
    of range, non-finite, outside the grid, padding (index >= lengths), in a
    voxel numbered M or later, or after the first P of its voxel. Bitwise
    identical run to run and between the CUDA kernel and the jnp twin.
    ``voxels`` is differentiable w.r.t. points and features (a copy); errors are
    raised at trace time, naming the argument. Works under ``jit``, ``vmap``,
    ``lax.scan`` and batch sharding.
    """
    spec = grid_spec(voxel_size, point_range)
    M = _positive_int("max_voxels", max_voxels)
    P = _positive_int("max_points_per_voxel", max_points_per_voxel)
    points = check_points(points)
    N = points.shape[-2]
    if features is None:
        features = np.zeros((N, 0), np.float32)
    features = check_features(features, points, FEATURE_DTYPES)
    lengths = check_lengths(lengths)  # clamped inside the staged program
    lead = tuple(broadcast_leading({"points": points.shape[:-2],
                                    "features": features.shape[:-2],
                                    "lengths": np.shape(lengths)}))
    if math.prod(lead) * max(N, 1) >= 2**31:
        raise ValueError(f"points {tuple(points.shape)}: at most 2**31 - 1 points in a batch")
    warn_points_to_voxels(math.prod(lead), N, M, P, 3 + features.shape[-1])
    return VoxelBatch(*staged(_p2v_arrays, points, features, lengths, lead=lead, spec=spec,
                              max_voxels=M, max_points=P))


def _p2v_arrays(points, features, lengths, *, lead, spec, max_voxels, max_points):
    """The array work of a checked call: canonical operands, the bind, the outputs' shapes."""
    lengths = valid_lengths(lengths, points.shape[-2])
    features = features.astype(jnp.float32)  # exact for bfloat16 / float16
    operands = (to_canonical(points, lead, points.ndim - 2),
                to_canonical(features, lead, features.ndim - 2),
                to_canonical(lengths, lead, lengths.ndim))
    outs = _p2v_op.bind(*operands, spec=spec, max_voxels=max_voxels, max_points=max_points)
    return tuple(o.reshape(lead + o.shape[1:]) for o in outs)


# -- registration ------------------------------------------------------------
def _p2v_attrs(spec, max_voxels, max_points):
    return dict(lo=np.asarray(spec.lo, np.float32), hi=np.asarray(spec.hi, np.float32),
                size=np.asarray(spec.size, np.float32), dims=np.asarray(spec.shape, np.int32))


def _p2v_workspace_bytes(points, features, lengths, *, spec, max_voxels, max_points):
    """Device scratch per cloud of the CUDA handler (sort buffers, scans; host-side size)."""
    per_cloud = _extension.module_function("points_to_voxels_workspace_per_cloud")
    return per_cloud(batch_size(points, features, lengths), points.shape[1], max_voxels,
                     spec.num_voxels)


_p2v_op = FfiOp("points_to_voxels", twin=points_to_voxels_twin, abstract_eval=_p2v_abstract_eval,
                ffi_target="robocache_points_to_voxels", ffi_attrs=_p2v_attrs,
                workspace_bytes=_p2v_workspace_bytes)
