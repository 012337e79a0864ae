"""The jnp twin of ``points_to_voxels``: the lowering off CUDA and the reference of its kernel.

One cloud: the shared voxel index rule (``grid.voxel_index``), a stable sort
by voxel id, then rows numbered by each voxel's first point; ``map_episodes``
runs it over the batch. Everything but copying floats is integer arithmetic,
so the twin and the kernel agree bit for bit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._core.batching import map_episodes
from .grid import GridSpec, voxel_index


def _one_cloud(points, features, n, *, spec: GridSpec, M: int, P: int):
    """points [N, 3], features [N, C] float32, n scalar -> the five outputs of one cloud."""
    N = points.shape[0]
    G = spec.num_voxels  # < 2**31, so the sentinel G fits int32
    ijk, keep, vid = voxel_index(points, spec)
    idx = jnp.arange(N, dtype=jnp.int32)
    keep = keep & (idx < n)
    key = jnp.where(keep, vid, G)
    # A stable sort by voxel id: points grouped by voxel, each group in input order.
    skey, order = jax.lax.sort((key, idx), num_keys=1, is_stable=True)
    starts = jnp.concatenate([jnp.ones((min(N, 1),), bool), skey[1:] != skey[:-1]])
    run_start = jax.lax.cummax(jnp.where(starts, idx, 0))
    rank = idx - run_start  # rank of each sorted point within its voxel
    first = order[run_start]  # the voxel's first point (lowest index)
    valid = skey != G
    is_first = jnp.zeros((N,), jnp.int32).at[order].set((starts & valid).astype(jnp.int32))
    rows_before = jnp.cumsum(is_first)  # inclusive: row of a first point + 1
    row = rows_before[first] - 1
    kept = valid & (row < M) & (rank < P)
    point_to_voxel = jnp.zeros((N,), jnp.int32).at[order].set(jnp.where(kept, row, -1))
    num_voxels = jnp.minimum(rows_before[-1] if N else jnp.int32(0), M).astype(jnp.int32)

    data = jnp.concatenate([points, features], axis=-1)[order]
    slot = jnp.where(kept, row * P + rank, M * P)
    voxels = jnp.zeros((M * P, data.shape[-1]), jnp.float32).at[slot].set(data, mode="drop")
    num_points = jnp.zeros((M,), jnp.int32).at[jnp.where(kept, row, M)].add(1, mode="drop")
    head = starts & valid & (row < M)
    coords = jnp.full((M, 3), -1, jnp.int32).at[jnp.where(head, row, M)].set(
        ijk[order], mode="drop")
    return voxels.reshape(M, P, -1), coords, num_points, num_voxels, point_to_voxel


def points_to_voxels_twin(points, features, lengths, *, spec, max_voxels, max_points):
    """points [Bp,N,3], features [Bf,N,C], lengths [Bl] (Bx in {1, B}) -> outputs [B, ...]."""
    N = points.shape[1]
    n = jnp.clip(lengths, 0, N).astype(jnp.int32)
    one = lambda p, f, k: _one_cloud(p, f, k, spec=spec, M=max_voxels, P=max_points)  # noqa: E731
    return tuple(map_episodes(one, points, features, n))
