"""Independent numpy reference for ``voxelize``, written from its contract
(docs/ops/voxelize.md) with plain loops.

The voxel index rule is defined in float32 (subtract, IEEE divide, floor), so
the reference evaluates it with numpy float32 scalars; sums and means are
accumulated in float64 (compare with a float32 tolerance).
"""

from __future__ import annotations

import math

import numpy as np


def grid_shape(voxel_size, point_range):
    size = np.broadcast_to(np.asarray(voxel_size, np.float64), (3,))
    lo, hi = np.asarray(point_range[:3], np.float64), np.asarray(point_range[3:], np.float64)
    return tuple(max(1, int(round(float(d)))) for d in (hi - lo) / size)


def point_voxel(p, voxel_size, point_range, shape):
    """(x, y, z) cell of one point, or None when it is dropped."""
    size = np.broadcast_to(np.asarray(voxel_size, np.float64), (3,))
    cell = []
    for a in range(3):
        lo, hi, s = (np.float32(v) for v in (point_range[a], point_range[a + 3], size[a]))
        v = np.float32(p[a])
        if not (math.isfinite(float(v)) and lo <= v < hi):
            return None
        with np.errstate(all="ignore"):
            f = math.floor(float(np.float32(np.float32(v - lo) / s)))
        if not 0 <= f < shape[a]:
            return None
        cell.append(f)
    return tuple(cell)


def _max_rank(v):
    """Sort rank of a feature value under the contract: NaN above +inf."""
    return (1, 0.0) if math.isnan(v) else (0, v)


def voxelize_cloud(points, features, n, voxel_size, point_range, mode):
    """One cloud: points [N, 3], features [N, C] or None, n valid points -> grid (float64)."""
    shape = grid_shape(voxel_size, point_range)
    N = points.shape[0]
    n = min(max(int(n), 0), N)
    C = 0 if features is None else features.shape[1]
    members = {}
    for i in range(n):
        cell = point_voxel(points[i], voxel_size, point_range, shape)
        if cell is not None:
            members.setdefault(cell, []).append(i)
    out = np.zeros(shape + ((C,) if mode in ("sum", "mean", "max") else ()), np.float64)
    for cell, idx in members.items():
        if mode == "count":
            out[cell] = len(idx)
        elif mode == "occupancy":
            out[cell] = 1.0
        else:
            f = features[idx].astype(np.float64)
            if mode == "sum":
                out[cell] = f.sum(0)
            elif mode == "mean":
                out[cell] = f.sum(0) / len(idx)
            else:
                for c in range(C):
                    best = max(f[:, c], key=_max_rank)
                    out[cell + (c,)] = 0.0 if best == 0 else best  # contract: +0.0, never -0.0
    return out


def max_winners(points, features, n, voxel_size, point_range):
    """Index of the point that attains each voxel's max per channel (ties: lowest), -1 if empty."""
    shape = grid_shape(voxel_size, point_range)
    C = features.shape[1]
    win = -np.ones(shape + (C,), np.int64)
    best = {}
    for i in range(min(max(int(n), 0), points.shape[0])):
        cell = point_voxel(points[i], voxel_size, point_range, shape)
        if cell is None:
            continue
        for c in range(C):
            r = _max_rank(float(features[i, c]))
            if (cell, c) not in best or r > best[(cell, c)]:
                best[(cell, c)] = r
                win[cell + (c,)] = i
    return win


def voxelize(points, features, lengths, voxel_size, point_range, mode):
    """Batched: points [B, N, 3], features [B, N, C] or None, lengths [B] or None."""
    B, N = points.shape[:2]
    lengths = np.full(B, N) if lengths is None else np.broadcast_to(lengths, (B,))
    if B == 0:
        C = () if features is None or mode not in ("sum", "mean", "max") else features.shape[2:]
        return np.zeros((0,) + grid_shape(voxel_size, point_range) + C)
    return np.stack([voxelize_cloud(points[b], None if features is None else features[b],
                                    lengths[b], voxel_size, point_range, mode)
                     for b in range(B)])
