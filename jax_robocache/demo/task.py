"""The learning task and its preprocessing, in-graph (JAX) and on the host (numpy).

For a query time q on the 10 Hz clock:

* input 1: a bird's-eye occupancy grid of the latest laser scan at q
  (previous-sample hold; invalid when the scan is older than the tolerance,
  which flags the recording's dropouts), its ranges turned into 2-D points in
  the sensor frame (readings outside the scanner's limits dropped);
* input 2: the motion over the past ``horizon_s`` (q - h -> q);
* target: the motion over the next ``horizon_s`` (q -> q + h).

A *motion* from pose a to pose b is (dx, dy, dyaw): b's position in a's
frame and the yaw change. Poses come from the odometry: the shipped recording
has per-sample increments (dx_k, dy_k, dphi_k in the robot frame since sample
k - 1), integrated by composition, pose_k = pose_{k-1} (+) increment_k
(yaw_k = yaw_{k-1} + dphi_k; the translation is rotated by yaw_{k-1});
bags carry absolute poses whose yaw comes from the quaternion (unwrapped).
Poses are interpolated linearly at q - h, q, q + h.

``preprocess_jax`` does all of it inside ``jit`` from the raw streams with
``align`` and ``voxelize``; ``preprocess_numpy`` is the same computation as a
typical host data loader writes it (searchsorted, np.interp, index scatter).
The arithmetic shared by both (pose integration, motions, points) is written
once against an array namespace ``xp`` (numpy or jax.numpy).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from ..voxels.grid import grid_spec
from ..streams.stream import Stream
from ..streams.align import align
from ..voxels.voxelize import voxelize
from .episode import ODOM_KINDS, Episode


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """Static description of the task (hashable: a ``jit`` static argument)."""

    odom_kind: str
    range_limits: tuple[float, float]
    scan_tolerance_s: float
    rate_hz: float = 10.0
    horizon_s: float = 0.5
    grid_extent_m: float = 12.8  # the grid covers [-extent, extent)^2 around the sensor
    voxel_m: float = 0.4  # -> 64 x 64 cells

    @classmethod
    def for_episode(cls, episode: Episode, **overrides) -> "TaskConfig":
        """Scan tolerance 1.5 scan periods: a longer gap (a dropout) invalidates the sample."""
        if episode.odom_kind not in ODOM_KINDS:
            raise ValueError(f"odom_kind must be one of {ODOM_KINDS}, got {episode.odom_kind!r}")
        return cls(odom_kind=episode.odom_kind, range_limits=tuple(map(float,
                                                                       episode.range_limits)),
                   scan_tolerance_s=round(1.5 * episode.scan_period, 6), **overrides)

    @property
    def point_range(self) -> tuple[float, ...]:
        e = self.grid_extent_m
        return (-e, -e, -0.5, e, e, 0.5)

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        return (self.voxel_m, self.voxel_m, 1.0)

    @property
    def grid_shape(self) -> tuple[int, int]:
        return grid_spec(self.voxel_size, self.point_range).shape[:2]


class Batch(NamedTuple):
    grid: object  # [B, X, Y] float32 occupancy (x-major, x forward)
    past: object  # [B, 3] motion over the last horizon
    target: object  # [B, 3] motion over the next horizon
    weight: object  # [B] float32: 1 where the scan and all three poses are valid


# -- arithmetic shared by both paths (xp = numpy or jax.numpy) -------------------
def odometry_poses(values, kind: str, xp):
    """``[S, 3]`` (x, y, yaw) poses from the raw odometry stream (see module docstring)."""
    if kind == "increments":
        dx, dy, dphi = values[:, 0], values[:, 1], values[:, 2]
        yaw = xp.cumsum(dphi)
        c, s = xp.cos(yaw - dphi), xp.sin(yaw - dphi)  # heading before each increment
        x, y = xp.cumsum(c * dx - s * dy), xp.cumsum(s * dx + c * dy)
    else:
        x, y, qx, qy, qz, qw = (values[:, k] for k in range(6))
        yaw = xp.unwrap(xp.arctan2(2 * (qw * qz + qx * qy), 1 - 2 * (qy * qy + qz * qz)))
    return xp.stack([x, y, yaw], axis=-1)


def motion(a, b, xp):
    """``[..., 3]``: pose b in the frame of pose a (dx, dy) and the yaw change."""
    d = b - a
    c, s = xp.cos(a[..., 2]), xp.sin(a[..., 2])
    return xp.stack([c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1], d[..., 2]],
                    axis=-1)


def scan_points(ranges, beam_cos, beam_sin, range_limits, xp):
    """``[B, R, 3]`` points (z = 0); readings outside the limits become NaN (dropped)."""
    lo, hi = range_limits
    r = xp.where((ranges >= lo) & (ranges <= hi), ranges, xp.nan)
    return xp.stack([r * beam_cos, r * beam_sin, xp.zeros_like(r)], axis=-1)


# -- in-graph -----------------------------------------------------------------------
def preprocess_jax(raw: dict, q, cfg: TaskConfig) -> Batch:
    """The batch for query times ``q [B]`` from the raw streams, all in jnp (jit it)."""
    B, h = q.shape[0], cfg.horizon_s
    poses = odometry_poses(raw["odom_values"], cfg.odom_kind, jnp)
    streams = {
        "scan": Stream(raw["scan_ranges"], raw["scan_times"], method="previous",
                       tolerance=cfg.scan_tolerance_s),
        "pose": Stream(poses, raw["odom_times"], method="linear"),
    }
    out = align(streams, jnp.concatenate([q - h, q, q + h]))  # one call, 3B queries
    ranges = out["scan"].values[B:2 * B]
    pose_valid = out["pose"].valid.reshape(3, B).all(axis=0)
    past_pose, now_pose, next_pose = out["pose"].values.reshape(3, B, 3)
    points = scan_points(ranges, raw["beam_cos"], raw["beam_sin"], cfg.range_limits, jnp)
    grid = voxelize(points, voxel_size=cfg.voxel_size, point_range=cfg.point_range,
                    mode="occupancy")[..., 0]
    weight = (out["scan"].valid[B:2 * B] & pose_valid).astype(jnp.float32)
    return Batch(grid, motion(past_pose, now_pose, jnp), motion(now_pose, next_pose, jnp),
                 weight)


# -- on the host ------------------------------------------------------------------------
def _occupancy_numpy(points: np.ndarray, cfg: TaskConfig) -> np.ndarray:
    """Bird's-eye occupancy with the voxel rules of ``voxelize`` (float32 arithmetic)."""
    spec = grid_spec(cfg.voxel_size, cfg.point_range)
    lo, hi = np.float32(spec.lo), np.float32(spec.hi)
    size, dims = np.float32(spec.size), np.asarray(spec.shape, np.float32)
    f = np.floor((points - lo) / size)
    keep = np.all((points >= lo) & (points < hi) & (f >= 0) & (f < dims), axis=-1)
    b, _ = np.nonzero(keep)
    ijk = f[keep].astype(np.int64)
    grid = np.zeros((points.shape[0],) + spec.shape[:2], np.float32)
    grid[b, ijk[:, 0], ijk[:, 1]] = 1.0
    return grid


def preprocess_numpy(episode: Episode, q: np.ndarray, cfg: TaskConfig) -> Batch:
    """``preprocess_jax`` as a host data loader computes it, one batch at a time."""
    h = cfg.horizon_s
    i = np.searchsorted(episode.scan_times, q, side="right") - 1
    scan_age = q - episode.scan_times[np.maximum(i, 0)]
    scan_valid = (i >= 0) & (scan_age <= np.float32(cfg.scan_tolerance_s))
    ranges = episode.scan_ranges[np.maximum(i, 0)]
    poses = odometry_poses(episode.odom_values, cfg.odom_kind, np)
    t = episode.odom_times
    queries = np.stack([q - np.float32(h), q, q + np.float32(h)])  # [3, B]
    at = np.stack([np.interp(queries, t, poses[:, k]) for k in range(3)], axis=-1)
    at = at.astype(np.float32)
    pose_valid = np.all((queries >= t[0]) & (queries <= t[-1]), axis=0)
    points = scan_points(ranges, episode.beam_cos, episode.beam_sin, cfg.range_limits, np)
    return Batch(_occupancy_numpy(points, cfg), motion(at[0], at[1], np),
                 motion(at[1], at[2], np), (scan_valid & pose_valid).astype(np.float32))
