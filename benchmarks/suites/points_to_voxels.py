"""points_to_voxels cases: hard voxelization of LiDAR clouds, vs the same rules in numpy/torch.

The headline (issue 19): clouds in the order sensors emit them
(jax_robocache.voxels.sensor_clouds): a 64-beam LiDAR at KITTI density (~124k
points per scan, ring order, intensity) on the KITTI voxels below at B = 8 and
32, a 640 x 480 RGB-D camera in pixel order (RGB) at 5 cm, and the real VLP-16
revolution of tests/data in its recorded order (8 copies); each also shuffled.
Goal on the ordered cases at B = 8: at least 2x faster than the jnp twin
in-graph. The random clouds below stay as the worst case.

Issue #5's targets, on synthetic spinning-LiDAR clouds (64 rings, ground plane
and obstacles, the rear half outside the range as in KITTI), features =
intensity (C = 1):

* KITTI-like voxels: range (0, -40, -3) .. (70.4, 40, 1) m at 0.05 x 0.05 x
  0.1 m (1408 x 1600 x 40 cells), max_voxels 40000, P = 32; 250k and 1M
  points. Goal: 250k points in <= 0.2 ms.
* PointPillars: range (0, -39.68, -3) .. (69.12, 39.68, 1) m, 0.16 m pillars
  (432 x 496 x 1), 12000 pillars, P = 32; 250k points.

Baselines (the contract's order: voxels by their first point, points in input
order, the first P kept) written with sorts: numpy ``np.unique`` + stable
``argsort``; torch ``torch.unique`` + ``scatter_reduce_`` (amin) + stable
``sort`` (its boolean masks sync with the host, as every torch voxelizer
does). Both compute the voxel index with IEEE float32 division, so all five
outputs equal ours bit for bit.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from harness import Case
from jax_robocache import points_to_voxels
from jax_robocache.voxels.points_to_voxels_cases import KITTI, PILLARS, lidar_cloud
from jax_robocache.voxels.sensor_clouds import sensor_batch

def bytes_moved(operands, *, setup):
    """Fewest bytes: read points and features, write every output once (per cloud)."""
    points, features, _ = operands
    B = int(np.prod(points.shape[:-2]))
    N, C = features.shape[-2:]
    M, P = setup["max_voxels"], setup["max_points_per_voxel"]
    return B * (N * (3 + C) * 4 + M * P * (3 + C) * 4 + M * 3 * 4 + M * 4 + 4 + N * 4)


def ours(points, features, lengths, *, setup):
    return points_to_voxels(points, features, lengths=lengths, **setup)


# -- the same rules written with sorts -----------------------------------------
def _grid(setup):
    """float32 lo, hi, size and the (X, Y, Z) shape, as jax_robocache.voxels.grid rounds them."""
    rng = np.asarray(setup["point_range"], np.float64)
    size = np.broadcast_to(np.asarray(setup["voxel_size"], np.float64), (3,))
    shape = np.maximum(1, np.round((rng[3:] - rng[:3]) / size)).astype(np.int64)
    return (rng[:3].astype(np.float32), rng[3:].astype(np.float32), size.astype(np.float32),
            shape)


def _per_cloud(fn, stack):
    """fn over the clouds of a batch ([B, N, 3] points, [B] lengths), outputs stacked."""
    @functools.wraps(fn)
    def batched(points, features, lengths, *, setup):
        if points.ndim == 2:
            return fn(points, features, lengths, setup=setup)
        outs = [fn(points[b], features[b], lengths[b], setup=setup)
                for b in range(points.shape[0])]
        return tuple(stack(list(o)) for o in zip(*outs))
    return batched


def numpy_points_to_voxels(points, features, lengths, *, setup):
    lo, hi, size, (X, Y, Z) = _grid(setup)
    M, P = setup["max_voxels"], setup["max_points_per_voxel"]
    N = len(points)
    f = np.floor((points - lo) / size)
    keep = ((points >= lo) & (points < hi) & (f >= 0) & (f < (X, Y, Z))).all(-1)
    keep &= np.arange(N) < lengths
    ids = np.flatnonzero(keep)  # kept points, in input order
    ijk = f[ids].astype(np.int64)
    vid = (ijk[:, 0] * Y + ijk[:, 1]) * Z + ijk[:, 2]
    uniq, first, inverse = np.unique(vid, return_index=True, return_inverse=True)
    by_first = np.argsort(first)  # row r is voxel uniq[by_first[r]]
    row_of = np.empty_like(by_first)
    row_of[by_first] = np.arange(len(uniq))
    row = row_of[inverse]
    order = np.argsort(row, kind="stable")  # grouped by row, input order within a row
    srow = row[order]
    starts = np.flatnonzero(np.r_[True, srow[1:] != srow[:-1]])
    rank = np.empty_like(row)
    rank[order] = np.arange(len(row)) - np.repeat(starts, np.diff(np.r_[starts, len(row)]))
    ok = (row < M) & (rank < P)
    voxels = np.zeros((M, P, 3 + features.shape[1]), np.float32)
    voxels[row[ok], rank[ok]] = np.concatenate([points, features], axis=1)[ids[ok]]
    used = min(len(uniq), M)
    coords = np.full((M, 3), -1, np.int32)
    coords[:used] = ijk[first[by_first[:used]]]
    num_points = np.bincount(row[ok], minlength=M).astype(np.int32)
    point_to_voxel = np.full(N, -1, np.int32)
    point_to_voxel[ids[ok]] = row[ok]
    return voxels, coords, num_points, np.int32(used), point_to_voxel


def torch_points_to_voxels(points, features, lengths, *, setup):
    import torch
    lo, hi, size, (X, Y, Z) = (torch.as_tensor(a, device=points.device) for a in _grid(setup))
    M, P = setup["max_voxels"], setup["max_points_per_voxel"]
    N, dev = points.shape[0], points.device
    f = torch.floor((points - lo) / size)
    keep = ((points >= lo) & (points < hi) & (f >= 0) & (f < torch.stack([X, Y, Z]))).all(-1)
    keep &= torch.arange(N, device=dev) < lengths
    ids = keep.nonzero().squeeze(1)  # kept points, in input order (a host sync)
    ijk = f[ids].long()
    vid = (ijk[:, 0] * Y + ijk[:, 1]) * Z + ijk[:, 2]
    uniq, inverse = torch.unique(vid, return_inverse=True)
    U, K = uniq.shape[0], ids.shape[0]
    pos = torch.arange(K, device=dev)
    first = torch.full((U,), K, device=dev).scatter_reduce_(0, inverse, pos, "amin")
    by_first = torch.argsort(first)
    row_of = torch.empty_like(by_first)
    row_of[by_first] = torch.arange(U, device=dev)
    row = row_of[inverse]
    srow, order = torch.sort(row, stable=True)
    start = torch.searchsorted(srow, srow)  # first position of each point's row
    rank = torch.empty_like(row)
    rank[order] = pos - start
    ok = (row < M) & (rank < P)
    voxels = points.new_zeros(M, P, 3 + features.shape[1])
    voxels[row[ok], rank[ok]] = torch.cat([points, features], 1)[ids[ok]]
    used = min(U, M)
    coords = torch.full((M, 3), -1, dtype=torch.int32, device=dev)
    coords[:used] = ijk[first[by_first[:used]]].int()
    num_points = torch.bincount(row[ok], minlength=M).int()
    point_to_voxel = torch.full((N,), -1, dtype=torch.int32, device=dev)
    point_to_voxel[ids[ok]] = row[ok].int()
    return (voxels, coords, num_points, torch.tensor(used, dtype=torch.int32, device=dev),
            point_to_voxel)


def numpy_batched(points, features, lengths, *, setup):
    return _per_cloud(numpy_points_to_voxels, np.stack)(points, features, lengths, setup=setup)


def torch_batched(points, features, lengths, *, setup):
    import torch
    return _per_cloud(torch_points_to_voxels, torch.stack)(points, features, lengths,
                                                          setup=setup)


#: Issue 19: on clouds in sensor order at B = 8, >= 2x the jnp twin in-graph.
SENSOR_GOAL = ("vs_jnp_min", 2.0)
VLP16 = Path(__file__).resolve().parents[2] / "tests" / "data" / "vlp16.npz"
#: The room of the RGB-D frames at 5 cm, 20000 voxels of up to 32 points.
RGBD = dict(voxel_size=0.05, point_range=(-3.025, -2.525, -0.125, 2.975, 2.475, 2.875),
            max_voxels=20000, max_points_per_voxel=32)
#: The VLP-16's surroundings (+-50 m) at KITTI's voxel size.
VLP16_SETUP = dict(KITTI, point_range=(-50.0, -50.0, -4.0, 50.0, 50.0, 4.0))


def _case(name, params, make_inputs, setup, goal):
    params = dict(params, M=setup["max_voxels"], P=setup["max_points_per_voxel"],
                  voxel=" x ".join(f"{s:g}" for s in np.broadcast_to(setup["voxel_size"], (3,))))
    return Case(
        op="points_to_voxels", name=name, params=params, make_inputs=make_inputs,
        fn=functools.partial(ours, setup=setup),
        bytes_moved=functools.partial(bytes_moved, setup=setup),
        feed=2,  # lengths (a scalar or [B]) carries the loop dependency; points are MBs
        torch_fn=functools.partial(torch_batched, setup=setup),
        numpy_fn=functools.partial(numpy_batched, setup=setup),
        tolerance=0.0,  # bitwise: the same integer rules and float copies
        goal=goal)


def case(name, N, setup, goal=None):
    """One random spinning-LiDAR-like cloud, points in random order (the worst case)."""
    return _case(name, dict(N=N), functools.partial(lidar_cloud, N=N), setup, goal)


def sensor_case(source, B, *, shuffle=False, scale=1.0, with_goal=True):
    """A batch of clouds as a sensor delivers them (sensor_clouds), or shuffled; features:
    intensity (LiDAR) or RGB (depth camera)."""
    setup = {"lidar": KITTI, "rgbd": RGBD, "vlp16": VLP16_SETUP}[source]
    if scale != 1.0:
        setup = dict(setup, max_voxels=500, max_points_per_voxel=4)
    order = "shuffled" if shuffle else "ordered"
    make = functools.partial(sensor_batch, source, B, shuffle=shuffle, features="i",
                             scale=scale, vlp16_path=VLP16)
    goal = SENSOR_GOAL if with_goal and not shuffle and B == 8 else None
    name = f"{source}_B{B}_{order}" if scale == 1.0 else f"smoke_{source}_{order}"
    return _case(name, dict(B=B, source=source, order=order), make, setup, goal)


def cases(suite: str) -> list[Case]:
    if suite == "smoke":
        return ([case("smoke_kitti", 2000, dict(KITTI, max_voxels=300, max_points_per_voxel=4))]
                + [sensor_case("lidar", 2, scale=0.1, with_goal=False),
                   sensor_case("rgbd", 2, shuffle=True, scale=0.1, with_goal=False)])
    # the headline: clouds in sensor order (and shuffled); random points kept as the worst case
    quick = ([sensor_case(source, B, shuffle=shuffle)
              for source, B in (("lidar", 8), ("lidar", 32), ("rgbd", 8), ("vlp16", 8))
              for shuffle in (False, True)]
             + [case("kitti_250k", 250_000, KITTI, goal=("p50_max_s", 0.2e-3))])
    if suite == "quick":
        return quick
    return quick + [case("kitti_1m", 1_000_000, KITTI),
                    case("pillars_250k", 250_000, PILLARS)]
