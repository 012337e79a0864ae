"""Readers: the datasets robot-learning teams have -> ``DatasetSource`` -> ``EpisodeStore``.

Each format is an optional extra with one light dependency (``docs/io.md`` has every
reader's mapping and diagnostics)::

    read_lerobot(root)                      # LeRobotDataset v3.0 / v2.1   [lerobot]: pyarrow
    read_zarr(path)                         # zarr replay buffer            [zarr]:    zarr
    read_hdf5(path, layout="robomimic")     # robomimic / ALOHA HDF5        [hdf5]:    h5py
    read_bags(paths_or_dir, topics=...)     # ROS 2 bags, one per episode   [io]:      rosbags

Each returns a ``DatasetSource`` (host-side: lazily sliceable values, clocks, masks,
offsets, the dataset's stats, timestamp diagnostics); ``.to_store()`` streams it into
an ``EpisodeStore`` chunk by chunk.

ROS 2 bags (sqlite3 ``.db3`` or MCAP) -> ``Stream``s, through ``rosbags`` (no ROS install).

Install with ``pip install 'jax_robocache[io]'``. ::

    from jax_robocache.io import read_bag
    bag = read_bag("my_bag/", topics=["/scan", "/odom"])
    scan = bag["/scan"].stream(method="previous", tolerance=0.3)      # ranges
    pose = bag["/odom"].stream("pose.pose.position")                  # x, y, z
    yaw = bag["/odom"].stream("pose.pose.orientation", method="slerp")

Timestamps: each message's ``header.stamp`` as int64 nanoseconds
(``sec * 10**9 + nanosec``, exact; ``stamps="log"`` takes the recorder's
receive time instead). ``TopicData.stamps_ns`` keeps them; ``TopicData.times``
holds seconds relative to one origin shared by every topic read from the bag
(``Bag.origin_ns``, the earliest stamp), computed with
``jax_robocache.relative_timestamps`` (int64 subtraction before the float
cast). Each topic is sorted by stamp (stable).

Values: ``TopicData.values [S, D]`` holds the fields exactly as sent (float64;
float32 for LaserScan ranges/intensities and float32 point fields), column
names in ``TopicData.fields``. ``TopicData.stream(*fields)`` casts them to
float32 (float64 under ``jax_enable_x64``) for the ops. Layouts (columns in
this order; covariances are not read):

==============================  ====  ========================================================
type                            D     columns (``fields``)
==============================  ====  ========================================================
sensor_msgs/msg/JointState      3 J   ``position[name]`` x J, ``velocity[name]`` x J,
                                      ``effort[name]`` x J, joints in the order of the first
                                      message (later messages are reordered by name; another
                                      set of names is an error). An empty array in a message
                                      (ROS: not measured) gives NaN. ``info["joint_names"]``.
sensor_msgs/msg/Imu             10    ``orientation.{x,y,z,w}``, ``angular_velocity.{x,y,z}``,
                                      ``linear_acceleration.{x,y,z}``
sensor_msgs/msg/LaserScan       R     ``ranges[k]`` (float32, as sent: inf/NaN/out-of-limit
                or 2 R                readings unchanged), then ``intensities[k]`` when any
                                      message has them (NaN for messages without). A change
                                      of beam count is an error. ``info``: ``angle_min``,
                                      ``angle_max``, ``angle_increment``, ``time_increment``,
                                      ``scan_time``, ``range_min``, ``range_max``,
                                      ``frame_id`` (of the first message) and ``angles`` [R]
                                      (``angle_min + k * angle_increment``, float64).
sensor_msgs/msg/PointCloud2     N C   the points of each message, point-major
                                      (``[x0, y0, z0, f0, x1, ...]``), padded with NaN to the
                                      largest cloud N; ``fields`` = ``("x", "y", "z",
                                      *point_fields)`` (C of them). ``.points`` gives
                                      ``[S, N, C]``. dtype: float32 promoted with the fields'
                                      types (never rounded). ``info``: ``point_counts`` [S],
                                      ``max_points``, ``point_fields``, ``frame_id``. NaN
                                      padding is dropped by ``voxelize``.
nav_msgs/msg/Odometry           13    ``pose.pose.position.{x,y,z}``,
                                      ``pose.pose.orientation.{x,y,z,w}``,
                                      ``twist.twist.linear.{x,y,z}``,
                                      ``twist.twist.angular.{x,y,z}``
geometry_msgs/msg/WrenchStamped 6     ``wrench.force.{x,y,z}``, ``wrench.torque.{x,y,z}``
geometry_msgs/msg/PoseStamped   7     ``pose.position.{x,y,z}``, ``pose.orientation.{x,y,z,w}``
==============================  ====  ========================================================

Errors: a topic of another type raises ``UnsupportedMessageError`` naming the
topic and its type; a missing, truncated or corrupt bag, a message that breaks
its topic's layout, or fewer readable messages than the bag's index announces
raise ``BagError`` (a ``ValueError``) and nothing is returned.
"""

from ._bag import Bag, BagError, TopicData, UnsupportedMessageError, list_topics, read_bag
from ._messages import SUPPORTED_TYPES
from .bags import read_bags
from .diagnostics import Diagnostics, TimestampReport, check_timestamps
from .errors import DatasetError, LayoutError
from .hdf5 import read_hdf5
from .lerobot import read_lerobot
from .source import DatasetSource, FrameIndex, StreamSource
from .zarr_buffer import read_zarr

__all__ = ["SUPPORTED_TYPES", "Bag", "BagError", "DatasetError", "DatasetSource", "Diagnostics",
           "FrameIndex", "LayoutError", "StreamSource", "TimestampReport", "TopicData",
           "UnsupportedMessageError", "check_timestamps", "list_topics", "read_bag",
           "read_bags", "read_hdf5", "read_lerobot", "read_zarr"]
