"""Writes the shipped recording as a ROS 2 bag (``--export-sena-bag``), to try ``--bag``.

Topics: ``/scan`` (sensor_msgs/LaserScan: 361 ranges from -90 to +90 degrees
in 0.5 degree steps, frame ``laser``) and ``/odom`` (nav_msgs/Odometry, frame
``odom``, child ``base_link``): the odometry increments integrated into poses
in float64 (pose_k = pose_{k-1} (+) increment_k, as in ``task.odometry_poses``),
twist = increment / time since the previous sample (0 for the first).
Header stamps and log times are the recorded epoch times as int64 nanoseconds
(whole seconds, plus the fraction rounded to the nanosecond).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .episode import SENA_RANGE_LIMITS, sena_arrays


def epoch_to_ns(t: np.ndarray) -> np.ndarray:
    """float64 epoch seconds -> int64 nanoseconds (exact split into seconds + fraction)."""
    t = np.asarray(t, np.float64)
    sec = np.floor(t)
    return sec.astype(np.int64) * 1_000_000_000 + np.round((t - sec) * 1e9).astype(np.int64)


def integrate_increments(inc: np.ndarray) -> np.ndarray:
    """``[S, 3]`` float64 (x, y, yaw) poses from (dx, dy, dphi) robot-frame increments."""
    inc = np.asarray(inc, np.float64)
    yaw = np.cumsum(inc[:, 2])
    c, s = np.cos(yaw - inc[:, 2]), np.sin(yaw - inc[:, 2])
    x = np.cumsum(c * inc[:, 0] - s * inc[:, 1])
    y = np.cumsum(s * inc[:, 0] + c * inc[:, 1])
    return np.stack([x, y, yaw], axis=-1)


def write_sena_bag(path, storage: str = "mcap") -> Path:
    """Writes the bag to the new directory ``path`` (``storage``: ``mcap`` or ``sqlite3``)."""
    try:
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore
    except ImportError as err:
        raise ImportError("writing bags needs rosbags: pip install 'jax_robocache[io]'") from err
    data = sena_arrays()
    ranges, scan_t, inc, odo_t = (data[k] for k in ("ranges", "scan_t", "odo_inc", "odo_t"))
    store = get_typestore(getattr(Stores, "LATEST", None) or Stores.ROS2_HUMBLE)
    T = store.types
    Header, Time = T["std_msgs/msg/Header"], T["builtin_interfaces/msg/Time"]

    def header(ns: int, frame: str):
        return Header(stamp=Time(sec=int(ns // 10**9), nanosec=int(ns % 10**9)), frame_id=frame)

    scan_ns, odo_ns = epoch_to_ns(scan_t), epoch_to_ns(odo_t)
    poses = integrate_increments(inc)
    dt = np.diff(odo_t, prepend=odo_t[0])
    rate = np.divide(inc.astype(np.float64), dt[:, None], out=np.zeros((len(inc), 3)),
                     where=dt[:, None] > 0)
    beams = ranges.shape[1]
    scan_type, odom_type = "sensor_msgs/msg/LaserScan", "nav_msgs/msg/Odometry"
    messages = []
    for k in range(len(ranges)):
        msg = T[scan_type](
            header=header(scan_ns[k], "laser"), angle_min=float(np.deg2rad(-90.0)),
            angle_max=float(np.deg2rad(-90.0 + 0.5 * (beams - 1))),
            angle_increment=float(np.deg2rad(0.5)), time_increment=0.0, scan_time=0.0,
            range_min=SENA_RANGE_LIMITS[0], range_max=SENA_RANGE_LIMITS[1],
            ranges=ranges[k].astype(np.float32), intensities=np.zeros(0, np.float32))
        messages.append((int(scan_ns[k]), "/scan", scan_type, msg))
    P, Q, V = T["geometry_msgs/msg/Point"], T["geometry_msgs/msg/Quaternion"], T[
        "geometry_msgs/msg/Vector3"]
    for k in range(len(poses)):
        x, y, yaw = poses[k]
        pose = T["geometry_msgs/msg/PoseWithCovariance"](
            pose=T["geometry_msgs/msg/Pose"](position=P(x=x, y=y, z=0.0), orientation=Q(
                x=0.0, y=0.0, z=float(np.sin(yaw / 2)), w=float(np.cos(yaw / 2)))),
            covariance=np.zeros(36))
        twist = T["geometry_msgs/msg/TwistWithCovariance"](
            twist=T["geometry_msgs/msg/Twist"](linear=V(x=rate[k, 0], y=rate[k, 1], z=0.0),
                                               angular=V(x=0.0, y=0.0, z=rate[k, 2])),
            covariance=np.zeros(36))
        msg = T[odom_type](header=header(odo_ns[k], "odom"), child_frame_id="base_link",
                           pose=pose, twist=twist)
        messages.append((int(odo_ns[k]), "/odom", odom_type, msg))
    messages.sort(key=lambda m: m[0])

    path = Path(path)
    with Writer(path, version=9, storage_plugin=StoragePlugin[storage.upper()]) as writer:
        conns = {topic: writer.add_connection(topic, msgtype, typestore=store)
                 for topic, msgtype in (("/scan", scan_type), ("/odom", odom_type))}
        for ns, topic, msgtype, msg in messages:
            writer.write(conns[topic], ns, store.serialize_cdr(msg, msgtype))
    return path
