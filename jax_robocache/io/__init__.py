"""ROS 2 bags (sqlite3 ``.db3`` or MCAP) -> ``Stream``s, through ``rosbags`` (no ROS install).

Install with ``pip install 'jax_robocache[io]'``. ::

    from jax_robocache.io import read_bag
    bag = read_bag("my_bag/", topics=["/scan", "/odom"])
    scan = bag["/scan"].stream(method="previous", tolerance=0.3)      # ranges
    pose = bag["/odom"].stream("pose.pose.position")                  # x, y, z
    yaw = bag["/odom"].stream("pose.pose.orientation", method="slerp")

Timestamps: each message's ``header.stamp`` as exact int64 nanoseconds
(``TopicData.stamps_ns``); ``TopicData.times`` holds seconds relative to one
origin shared by every topic of the bag (``Bag.origin_ns``). Values:
``TopicData.values [S, D]`` exactly as sent, column names in
``TopicData.fields``; ``TopicData.stream(*fields)`` casts them for the ops.
Errors: ``UnsupportedMessageError`` for a topic of another type, ``BagError``
for a truncated or corrupt bag (nothing is returned). The column layout of
every supported message type, and the rules: docs/io.md.
"""

from ._bag import Bag, BagError, TopicData, UnsupportedMessageError, list_topics, read_bag
from ._messages import SUPPORTED_TYPES

__all__ = ["SUPPORTED_TYPES", "Bag", "BagError", "TopicData", "UnsupportedMessageError",
           "list_topics", "read_bag"]
