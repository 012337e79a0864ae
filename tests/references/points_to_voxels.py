"""Independent numpy reference for ``points_to_voxels``: a plain loop over the points.

Written from the contract (docs/ops/points_to_voxels.md), not from the jnp twin or
the kernel: it shares no code with jax_robocache.
"""

from __future__ import annotations

import numpy as np


def grid(voxel_size, point_range):
    """(lo, hi, size) float32 [3] each and the grid shape (X, Y, Z)."""
    size = np.broadcast_to(np.asarray(voxel_size, np.float64), (3,))
    rng = np.asarray(point_range, np.float64)
    shape = tuple(max(1, int(round(float(d)))) for d in (rng[3:] - rng[:3]) / size)
    return (rng[:3].astype(np.float32), rng[3:].astype(np.float32), size.astype(np.float32),
            shape)


def cell(p, lo, hi, size, shape):
    """Voxel (x, y, z) of one float32 point, or None when it is dropped."""
    out = []
    for a in range(3):
        v = np.float32(p[a])
        if not (np.isfinite(v) and lo[a] <= v < hi[a]):
            return None
        f = np.floor((v - lo[a]) / size[a])  # float32 subtract, divide, floor
        if not 0 <= f < shape[a]:
            return None
        out.append(int(f))
    return tuple(out)


def cloud(points, features, n, voxel_size, point_range, M, P):
    """One cloud: points [N, 3], features [N, C] or None, n valid -> dict of outputs."""
    N = points.shape[0]
    C = 0 if features is None else features.shape[1]
    lo, hi, size, shape = grid(voxel_size, point_range)
    n = min(max(int(n), 0), N)
    voxels = np.zeros((M, P, 3 + C), np.float32)
    coords = np.full((M, 3), -1, np.int32)
    num_points = np.zeros(M, np.int32)
    point_to_voxel = np.full(N, -1, np.int32)
    row_of = {}  # voxel cell -> row, or -1 once the rows are exhausted
    num_voxels = 0
    for i in range(n):
        c = cell(points[i], lo, hi, size, shape)
        if c is None:
            continue
        if c not in row_of:
            if num_voxels < M:
                row_of[c] = num_voxels
                coords[num_voxels] = c
                num_voxels += 1
            else:
                row_of[c] = -1
        r = row_of[c]
        if r < 0 or num_points[r] >= P:
            continue
        voxels[r, num_points[r], :3] = points[i]
        if C:
            voxels[r, num_points[r], 3:] = np.asarray(features[i], np.float32)
        num_points[r] += 1
        point_to_voxel[i] = r
    return dict(voxels=voxels, coords=coords, num_points=num_points,
                num_voxels=np.int32(num_voxels), point_to_voxel=point_to_voxel)


def points_to_voxels(points, features, lengths, voxel_size, point_range, M, P):
    """Batched over leading dims: points [..., N, 3], features [..., N, C] | None, lengths [...]."""
    points = np.asarray(points, np.float32)
    lead = points.shape[:-2]
    N = points.shape[-2]
    B = int(np.prod(lead))
    flat_p = points.reshape((B, N, 3))
    flat_f = None if features is None else np.broadcast_to(
        np.asarray(features, np.float32), lead + np.shape(features)[-2:]).reshape(
        B, N, np.shape(features)[-1])
    flat_n = np.broadcast_to(N if lengths is None else np.asarray(lengths), lead).reshape(B)
    outs = [cloud(flat_p[b], None if flat_f is None else flat_f[b], flat_n[b], voxel_size,
                  point_range, M, P) for b in range(B)]
    return {k: np.stack([o[k] for o in outs]).reshape(lead + np.shape(outs[0][k]))
            if outs else None for k in ("voxels", "coords", "num_points", "num_voxels",
                                        "point_to_voxel")}
