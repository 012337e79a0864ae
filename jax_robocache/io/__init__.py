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

ROS 2 bags (sqlite3 ``.db3`` or MCAP) -> ``Stream``s, through ``rosbags`` (no ROS install)::

    from jax_robocache.io import read_bag
    bag = read_bag("my_bag/", topics=["/scan", "/odom"])
    scan = bag["/scan"].stream(method="previous", tolerance=0.3)      # ranges
    pose = bag["/odom"].stream("pose.pose.position")                  # x, y, z

Each message's ``header.stamp`` is read as exact int64 nanoseconds
(``TopicData.stamps_ns``); ``TopicData.times`` are seconds relative to the
bag's earliest stamp (``Bag.origin_ns``); ``TopicData.values [S, D]`` keep the
fields as sent, named by ``TopicData.fields``. The column layout of each
supported message type (``SUPPORTED_TYPES``), the diagnostics and the errors of
every reader: ``docs/io.md``. A bag is read completely or not at all
(``BagError``; ``UnsupportedMessageError`` names a topic of another type).
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
