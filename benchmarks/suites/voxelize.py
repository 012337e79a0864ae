"""voxelize cases: dense grids (count, occupancy, sum, mean, max), vs torch scatter and numpy.

Issue #4's targets: 1M points into a 128^3 grid and 4M points into 256^3, C=4
float32 features, uniform in a cube slightly larger than the grid's range
(~94% of the points inside). Goals: ``count`` within 1.3x of the time needed
to read the points and write the grid at the measured copy bandwidth (the
``roofline_max`` goal: ours' time over bytes_moved / copy bandwidth, i.e.
``% of copy`` >= 77%); ``mean`` at least 4x faster than the jnp twin.
Baselines: torch ``scatter_add_`` / ``scatter_reduce_`` into one extra
"dropped" bin (no host sync), numpy ``np.bincount`` / ``np.maximum.at``; both
compute the voxel index with the same float32 operations as ours, so the
grids agree (count exactly).
"""

from __future__ import annotations

import functools

import numpy as np

from harness import Case
from jax_robocache import voxelize
from jax_robocache.voxels.voxelize_cases import CASES, cube_grid

FEATURE_MODES = ("sum", "mean", "max")
EXTENT = 1.0  # the grid covers [-1, 1)^3; points fall in [-1.02, 1.02)^3


def bytes_moved(operands, *, grid, mode):
    """Fewest bytes: points (and features) read once, the grid written once."""
    points, *features, _ = operands
    N = points.shape[1]
    cell = 4 * (features[0].shape[-1] if features else 1)
    return N * 12 + (features[0].nbytes if features else 0) + grid ** 3 * cell


def ours(*operands, mode, grid):
    points, *features, lengths = operands
    return voxelize(points, *features, mode=mode, lengths=lengths, **cube_grid(grid, EXTENT))


# -- what a user would write ---------------------------------------------------
def _grid_constants(grid):
    lo = np.float32(-EXTENT)
    return lo, np.float32(EXTENT), np.float32(2 * EXTENT / grid)


def numpy_voxel_ids(points, grid):
    """Linear voxel id of each point (x-major), ``grid ** 3`` for dropped points."""
    lo, hi, size = _grid_constants(grid)
    f = np.floor((points - lo) / size)
    keep = ((points >= lo) & (points < hi) & (f >= 0) & (f < grid)).all(-1)
    ijk = np.where(keep[:, None], f, 0).astype(np.int64)
    return np.where(keep, (ijk[:, 0] * grid + ijk[:, 1]) * grid + ijk[:, 2], grid ** 3)


def numpy_voxelize(*operands, mode, grid):
    """np.bincount (count, sum, mean) / np.maximum.at (max) into a dropped-points bin."""
    points, *features, _ = operands
    vid = numpy_voxel_ids(points[0], grid)
    V = grid ** 3
    count = np.bincount(vid, minlength=V + 1)[:V]
    shape = (1, grid, grid, grid)
    if mode == "count":
        return count.astype(np.int32).reshape(shape)
    if mode == "occupancy":
        return (count > 0).astype(np.float32).reshape(shape)
    f = features[0][0]
    C = f.shape[1]
    if mode == "max":
        out = np.full((V + 1, C), -np.inf, np.float32)
        np.maximum.at(out, vid, f)
        out = np.where(count[:, None] > 0, out[:V], 0)
    else:
        out = np.stack([np.bincount(vid, weights=f[:, c], minlength=V + 1)[:V]
                        for c in range(C)], axis=-1)
        if mode == "mean":
            out = out / np.maximum(count, 1)[:, None]
    return out.astype(np.float32).reshape(shape + (C,))


def torch_voxelize(*operands, mode, grid):
    """scatter_add_ (count, sum, mean) / scatter_reduce_ amax (max) into a dropped bin."""
    import torch
    points, *features, _ = operands
    lo, hi, size = (float(x) for x in _grid_constants(grid))
    p = points[0]
    f = torch.floor((p - lo) / torch.full((3,), size, device=p.device))  # IEEE division
    keep = ((p >= lo) & (p < hi) & (f >= 0) & (f < grid)).all(-1)
    ijk = torch.where(keep[:, None], f, 0).long()
    V = grid ** 3
    vid = torch.where(keep, (ijk[:, 0] * grid + ijk[:, 1]) * grid + ijk[:, 2], V)
    shape = (1, grid, grid, grid)
    if mode in ("count", "occupancy", "mean"):
        count = torch.zeros(V + 1, dtype=torch.int32, device=p.device).scatter_add_(
            0, vid, torch.ones_like(vid, dtype=torch.int32))[:V]
        if mode == "count":
            return count.reshape(shape)
        if mode == "occupancy":
            return (count > 0).float().reshape(shape)
    x = features[0][0]
    C = x.shape[1]
    index = vid[:, None].expand(-1, C)
    out = x.new_zeros(V + 1, C)
    if mode == "max":
        out.scatter_reduce_(0, index, x, reduce="amax", include_self=False)
    else:
        out.scatter_add_(0, index, x)
    out = out[:V]
    if mode == "mean":
        out = out / count.clamp(min=1)[:, None]
    return out.reshape(shape + (C,))


GOALS = {"count": ("roofline_max", 1.3), "mean": ("vs_jnp_min", 4.0)}


def case(name, N, grid, mode, C=4, with_goal=True):
    params = dict(N=N, grid=f"{grid}^3", mode=mode, **({"C": C} if mode in FEATURE_MODES else {}))
    kw = dict(mode=mode, grid=grid)
    return Case(
        op="voxelize", name=name, params=params,
        make_inputs=lambda rng: tuple(CASES["uniform"].make(
            rng, B=1, N=N, C=C, mode=mode, grid=grid).arrays.values()),
        fn=functools.partial(ours, **kw),
        bytes_moved=functools.partial(bytes_moved, **kw),
        # lengths (one int32) carries the loop dependency: the kernel path copies the feed
        # once per call, and points/features are MBs. (An int grid feeds it too: timing.py.)
        feed=2 if mode in FEATURE_MODES else 1,
        ffi_target="robocache_voxelize_binned" if mode in ("sum", "mean") else None,
        torch_fn=functools.partial(torch_voxelize, **kw),
        numpy_fn=functools.partial(numpy_voxelize, **kw),
        tolerance=1e-5,
        goal=GOALS.get(mode) if with_goal else None)


def cases(suite: str) -> list[Case]:
    if suite == "smoke":
        return [case(f"smoke_{mode}", 4000, 16, mode, with_goal=False)
                for mode in ("count", "mean")]
    quick = [case("1M_128_count", 1_000_000, 128, "count")]
    if suite == "quick":
        return quick
    return (quick + [case(f"1M_128_{mode}", 1_000_000, 128, mode)
                     for mode in ("occupancy", "sum", "mean", "max")]
            + [case(f"4M_256_{mode}", 4_000_000, 256, mode) for mode in ("count", "mean")])
