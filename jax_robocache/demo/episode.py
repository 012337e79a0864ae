"""The demo's raw input: one recording's laser scans and odometry, as host arrays.

Two sources give the same ``Episode``:

* ``load_sena()``: the real recording shipped with the package
  (``data/sena.npz``; see ``data/README.md``): 224 SICK-style scans (361
  beams over 180 degrees, ~4 Hz) and wheel-odometry *increments*
  (dx, dy, dphi in the robot frame since the previous odometry sample).
* ``load_bag(path, scan_topic, odom_topic)``: a ROS 2 bag's
  ``sensor_msgs/LaserScan`` and ``nav_msgs/Odometry`` topics (absolute poses).

Nothing here is preprocessing: the arrays are the raw streams, with the two steps
that must happen on the host in float64 before anything becomes float32:
timestamps relative to one origin, and (bags) positions relative to the first pose.
"""

from __future__ import annotations

import dataclasses
from importlib import resources

import numpy as np

from ..streams.timestamps import relative_timestamps

#: Odometry representations: per-sample increments (integrated in the step) or absolute poses.
ODOM_KINDS = ("increments", "pose")

#: The shipped recording's laser limits (a SICK LMS-class scanner; 0 marks "no return").
SENA_RANGE_LIMITS = (0.02, 80.0)


@dataclasses.dataclass(frozen=True)
class Episode:
    """Raw streams of one recording (host numpy), times in seconds from one origin.

    Attributes:
      scan_ranges: ``[S_scan, R]`` float32 laser ranges, as recorded.
      scan_times: ``[S_scan]`` float32.
      beam_cos, beam_sin: ``[R]`` float32 direction of each beam (sensor frame).
      range_limits: ``(range_min, range_max)``: readings outside are no returns.
      odom_values: ``[S_odom, 3]`` (dx, dy, dphi) increments, or ``[S_odom, 6]``
        poses (x, y, qx, qy, qz, qw), float32.
      odom_times: ``[S_odom]`` float32.
      odom_kind: ``"increments"`` or ``"pose"``.
      source: what was loaded, for the printout.
    """

    scan_ranges: np.ndarray
    scan_times: np.ndarray
    beam_cos: np.ndarray
    beam_sin: np.ndarray
    range_limits: tuple[float, float]
    odom_values: np.ndarray
    odom_times: np.ndarray
    odom_kind: str
    source: str

    @property
    def scan_period(self) -> float:
        """Median spacing of the scans (seconds)."""
        return float(np.median(np.diff(self.scan_times))) if len(self.scan_times) > 1 else 0.1

    def query_clock(self, rate_hz: float, horizon_s: float) -> np.ndarray:
        """``[Q]`` float32 query times at ``rate_hz`` where past and future motion are known.

        From the first instant with a scan and ``horizon_s`` of odometry behind it, to
        the last with ``horizon_s`` of odometry ahead.
        """
        start = max(float(self.scan_times[0]), float(self.odom_times[0]) + horizon_s)
        stop = float(self.odom_times[-1]) - horizon_s
        count = int(np.floor((stop - start) * rate_hz + 1e-9)) + 1
        if count < 2:
            raise ValueError(f"{self.source}: too short for a {rate_hz} Hz clock with "
                             f"{horizon_s} s of odometry on both sides")
        return (start + np.arange(count) / rate_hz).astype(np.float32)

    def device_streams(self) -> dict:
        """The raw streams as a dict of arrays (the training step's argument)."""
        return {"scan_ranges": self.scan_ranges, "scan_times": self.scan_times,
                "beam_cos": self.beam_cos, "beam_sin": self.beam_sin,
                "odom_values": self.odom_values, "odom_times": self.odom_times}


def eval_blocks(num_queries: int, rate_hz: float, block_s: float = 5.0, every: int = 5):
    """``[Q]`` bool: the held-out queries, every ``every``-th block of ``block_s`` seconds.

    Blocks spread the evaluation over the whole route (a contiguous tail would test
    only one part of the building); shorter recordings get proportionally shorter blocks.
    """
    block = max(1, min(int(round(block_s * rate_hz)), num_queries // (2 * every)))
    held = (np.arange(num_queries) // block) % every == every - 1
    if held.all() or not held.any():
        raise ValueError(f"{num_queries} query times are too few to hold some out for evaluation")
    return held


def _beams(angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    angles = np.asarray(angles, np.float64)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def sena_path():
    """The shipped recording (an importlib.resources Traversable)."""
    return resources.files("jax_robocache.demo") / "data" / "sena.npz"


def sena_arrays() -> dict[str, np.ndarray]:
    """The shipped recording's arrays: ranges, scan_t, odo_inc, odo_t (see data/README.md)."""
    with resources.as_file(sena_path()) as path, np.load(path) as data:
        return {key: data[key] for key in ("ranges", "scan_t", "odo_inc", "odo_t")}


def load_sena() -> Episode:
    """The shipped MRPT recording: 58.8 s of laser scans and odometry increments."""
    data = sena_arrays()
    ranges, scan_t, odo_inc, odo_t = (data[k] for k in ("ranges", "scan_t", "odo_inc", "odo_t"))
    scan_rel, odo_rel, _ = relative_timestamps(scan_t, odo_t)
    beams = ranges.shape[1]
    cos, sin = _beams(np.deg2rad(-90.0 + 0.5 * np.arange(beams)))
    return Episode(ranges.astype(np.float32), scan_rel.astype(np.float32), cos, sin,
                   SENA_RANGE_LIMITS, odo_inc.astype(np.float32), odo_rel.astype(np.float32),
                   "increments", "sena.npz (MRPT, real 2-D LiDAR + wheel odometry, 58.8 s)")


def load_bag(path, scan_topic: str, odom_topic: str) -> Episode:
    """A ROS 2 bag's LaserScan and Odometry topics (needs ``jax_robocache[io]``)."""
    from ..io import read_bag

    bag = read_bag(path, topics=[scan_topic, odom_topic])
    scan, odom = bag[scan_topic], bag[odom_topic]
    for topic, want in ((scan, "sensor_msgs/msg/LaserScan"), (odom, "nav_msgs/msg/Odometry")):
        if topic.msgtype != want:
            raise ValueError(f"topic {topic.topic!r} is {topic.msgtype}, expected {want}")
    ranges = scan.values[:, scan.columns("ranges")]
    cos, sin = _beams(scan.info["angles"])
    pose = odom.values[:, odom.columns("pose.pose.position.x", "pose.pose.position.y",
                                       "pose.pose.orientation")]
    pose[:, :2] -= pose[:1, :2]  # float64 positions relative to the start, then float32
    return Episode(ranges.astype(np.float32), scan.times.astype(np.float32), cos, sin,
                   (scan.info["range_min"], scan.info["range_max"]), pose.astype(np.float32),
                   odom.times.astype(np.float32), "pose",
                   f"ROS 2 bag {path} ({scan_topic}: {len(ranges)} scans, {odom_topic}: "
                   f"{len(pose)} poses)")
