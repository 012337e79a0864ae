"""The jnp twin of ``voxelize``: the lowering off CUDA and the reference of its CUDA kernels.

One cloud is the shared voxel index rule (``grid.voxel_index``) followed by
one per-voxel reduction of ``reduce``; ``map_episodes`` runs it over the batch.
"""

from __future__ import annotations

import jax.numpy as jnp

from .._core.batching import map_episodes
from .._core.codes import VOXELIZE_MODES as MODES
from . import reduce as _reduce
from .grid import GridSpec, voxel_index

_FEATURE_REDUCTIONS = {MODES["sum"]: _reduce.feature_sum, MODES["mean"]: _reduce.feature_mean,
                       MODES["max"]: _reduce.feature_max}


def voxelize_twin(points, features, lengths, *, mode: int, grid: GridSpec):
    """points [Bp,N,3], features [Bf,N,C] ([1,N,0] for count/occupancy), lengths [Bl]."""
    N = points.shape[1]
    V = grid.num_voxels

    def one_cloud(p, f, n):
        _, keep, vid = voxel_index(p, grid)
        keep = keep & (jnp.arange(N) < jnp.clip(n, 0, N))
        seg = jnp.where(keep, vid, V)
        if mode == MODES["count"]:
            return _reduce.count(seg, V).reshape(grid.shape)
        if mode == MODES["occupancy"]:
            return _reduce.occupancy(seg, V).reshape(grid.shape)
        out = _FEATURE_REDUCTIONS[mode](seg, f, V).astype(f.dtype)
        return out.reshape(grid.shape + (f.shape[-1],))

    return (map_episodes(one_cloud, points, features, lengths),)
