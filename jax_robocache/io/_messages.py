"""One converter per supported ROS 2 message type: messages -> rows of a values array.

A converter receives a topic's deserialised messages one by one (``add``) and
returns ``(values [S, D], fields, info)`` from ``finish``. ``fields`` names the
D columns; ``info`` holds the topic's static metadata. The layouts are listed in
``jax_robocache.io``'s docstring; keep the two in sync.
"""

from __future__ import annotations

import operator

import numpy as np

from ._pointcloud import decode_points


class ConversionError(ValueError):
    """A message that does not fit its topic's layout (the bag reader adds the topic)."""


class _Fixed:
    """Types whose values are a fixed list of float64 attributes (paths into the message)."""

    def __init__(self, paths: tuple[str, ...]):
        self.paths = paths
        self._get = operator.attrgetter(*paths)
        self.rows: list[tuple] = []

    def add(self, msg) -> None:
        self.rows.append(self._get(msg))

    def finish(self):
        values = np.asarray(self.rows, np.float64).reshape(len(self.rows), len(self.paths))
        return values, self.paths, {}


def _xyz(prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}.{c}" for c in "xyz")


def _xyzw(prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}.{c}" for c in "xyzw")


_FIXED_LAYOUTS = {
    "sensor_msgs/msg/Imu": (_xyzw("orientation") + _xyz("angular_velocity")
                            + _xyz("linear_acceleration")),
    "nav_msgs/msg/Odometry": (_xyz("pose.pose.position") + _xyzw("pose.pose.orientation")
                              + _xyz("twist.twist.linear") + _xyz("twist.twist.angular")),
    "geometry_msgs/msg/WrenchStamped": _xyz("wrench.force") + _xyz("wrench.torque"),
    "geometry_msgs/msg/PoseStamped": _xyz("pose.position") + _xyzw("pose.orientation"),
}


class _JointState:
    """position, velocity, effort per joint, in the joint order of the first message."""

    def __init__(self):
        self.names: tuple[str, ...] | None = None
        self.rows: list[np.ndarray] = []

    def add(self, msg) -> None:
        names = tuple(msg.name)
        if self.names is None:
            if len(set(names)) != len(names):
                raise ConversionError(f"JointState has duplicate joint names {names}")
            self.names = names
        n = len(self.names)
        if names == self.names:
            order = None
        elif sorted(names) == sorted(self.names):
            index = {name: k for k, name in enumerate(names)}
            order = np.asarray([index[name] for name in self.names])
        else:
            raise ConversionError(f"JointState joint names changed from {self.names} to {names} "
                                  "(a topic must keep one set of joints)")
        row = np.full(3 * n, np.nan)
        for k, key in enumerate(("position", "velocity", "effort")):
            part = np.asarray(getattr(msg, key), np.float64)
            if part.size == 0:
                continue  # ROS allows an empty array: "not measured" -> NaN
            if part.size != len(names):
                raise ConversionError(f"JointState {key} has {part.size} entries for "
                                      f"{len(names)} joints")
            row[k * n:(k + 1) * n] = part if order is None else part[order]
        self.rows.append(row)

    def finish(self):
        names = self.names or ()
        fields = tuple(f"{key}[{name}]" for key in ("position", "velocity", "effort")
                       for name in names)
        values = np.asarray(self.rows, np.float64).reshape(len(self.rows), len(fields))
        return values, fields, {"joint_names": names}


class _LaserScan:
    """ranges (float32, as sent), then intensities when any message carries them."""

    _INFO = ("angle_min", "angle_max", "angle_increment", "time_increment", "scan_time",
             "range_min", "range_max")

    def __init__(self):
        self.info: dict | None = None
        self.ranges: list[np.ndarray] = []
        self.intensities: list[np.ndarray | None] = []

    def add(self, msg) -> None:
        ranges = np.asarray(msg.ranges, np.float32)
        if self.info is None:
            self.info = {key: float(getattr(msg, key)) for key in self._INFO}
            self.info["frame_id"] = msg.header.frame_id
        beams = self.ranges[0].size if self.ranges else ranges.size
        if ranges.size != beams:
            raise ConversionError(f"LaserScan beam count changed from {beams} to {ranges.size}")
        intensities = np.asarray(msg.intensities, np.float32)
        if intensities.size not in (0, beams):
            raise ConversionError(f"LaserScan has {intensities.size} intensities for "
                                  f"{beams} ranges")
        self.ranges.append(ranges)
        self.intensities.append(intensities if intensities.size else None)

    def finish(self):
        info = dict(self.info or {})
        beams = self.ranges[0].size if self.ranges else 0
        columns = [np.asarray(self.ranges, np.float32).reshape(len(self.ranges), beams)]
        fields = tuple(f"ranges[{k}]" for k in range(beams))
        if any(x is not None for x in self.intensities):
            nan = np.full(beams, np.nan, np.float32)
            columns.append(np.asarray([nan if x is None else x for x in self.intensities]))
            fields += tuple(f"intensities[{k}]" for k in range(beams))
        if info:
            info["angles"] = info["angle_min"] + np.arange(beams) * info["angle_increment"]
        return np.concatenate(columns, axis=1), fields, info


class _PointCloud2:
    """Clouds padded with NaN to the largest cloud, flattened point-major per message."""

    def __init__(self, extra_fields: tuple[str, ...]):
        self.names = ("x", "y", "z") + tuple(f for f in extra_fields if f not in ("x", "y", "z"))
        self.clouds: list[np.ndarray] = []
        self.frame_id = None

    def add(self, msg) -> None:
        try:
            self.clouds.append(decode_points(msg, self.names))
        except ValueError as err:
            raise ConversionError(f"PointCloud2: {err}") from None
        if self.frame_id is None:
            self.frame_id = msg.header.frame_id

    def finish(self):
        C = len(self.names)
        counts = np.asarray([c.shape[0] for c in self.clouds], np.int32)
        n_max = int(counts.max(initial=0))
        dtype = np.result_type(np.float32, *(c.dtype for c in self.clouds))
        values = np.full((len(self.clouds), n_max, C), np.nan, dtype)
        for k, cloud in enumerate(self.clouds):
            values[k, :cloud.shape[0]] = cloud
        info = {"point_fields": self.names, "point_counts": counts, "max_points": n_max,
                "frame_id": self.frame_id}
        return values.reshape(len(self.clouds), n_max * C), self.names, info


#: Supported message types (ROS 2 names; ROS 1 bags read through rosbags use the same names).
SUPPORTED_TYPES = tuple(sorted([*_FIXED_LAYOUTS, "sensor_msgs/msg/JointState",
                                "sensor_msgs/msg/LaserScan", "sensor_msgs/msg/PointCloud2"]))


def make_converter(msgtype: str, point_fields: tuple[str, ...] = ()):
    """A fresh converter for ``msgtype``, or None when the type is not supported."""
    if msgtype in _FIXED_LAYOUTS:
        return _Fixed(_FIXED_LAYOUTS[msgtype])
    if msgtype == "sensor_msgs/msg/JointState":
        return _JointState()
    if msgtype == "sensor_msgs/msg/LaserScan":
        return _LaserScan()
    if msgtype == "sensor_msgs/msg/PointCloud2":
        return _PointCloud2(tuple(point_fields))
    return None
