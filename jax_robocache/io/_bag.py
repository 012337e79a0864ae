"""Reading a bag with ``rosbags``: topics -> ``TopicData`` -> ``Stream``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..jax_compat import x64_enabled
from ..streams.stream import Stream
from ..streams.timestamps import integer_seconds, relative_timestamps
from ._messages import SUPPORTED_TYPES, ConversionError, make_converter
from .errors import DatasetError

INSTALL_HINT = "reading bags needs the rosbags package: pip install 'jax_robocache[io]'"


class BagError(DatasetError):
    """A bag that cannot be read completely (missing, truncated, corrupt or inconsistent)."""


class UnsupportedMessageError(BagError):
    """A topic whose message type ``jax_robocache.io`` cannot convert."""


@dataclasses.dataclass(frozen=True, eq=False)
class TopicData:
    """One topic of a bag, sorted by stamp (stable: bag order among equal stamps).

    Attributes:
      topic, msgtype: the topic name and its ROS 2 message type.
      fields: names of the D columns of ``values`` (for PointCloud2: of each point).
      stamps_ns: ``[S]`` int64 nanoseconds (header stamps, or log times).
      times: ``[S]`` seconds relative to the bag's origin (float32; float64 with x64).
      values: ``[S, D]`` exactly as in the messages (float64, or float32 for
        LaserScan and float32 point fields); NaN where a message leaves a field empty.
      info: static metadata of the topic (see the layout table in ``jax_robocache.io``).
    """

    topic: str
    msgtype: str
    fields: tuple[str, ...]
    stamps_ns: np.ndarray
    times: np.ndarray
    values: np.ndarray
    info: Mapping

    def __repr__(self) -> str:
        span = (f", times {float(self.times[0]):.3f}..{float(self.times[-1]):.3f} s"
                if len(self.times) else "")
        return (f"TopicData({self.topic!r}, {self.msgtype}, {len(self.stamps_ns)} messages, "
                f"values {tuple(self.values.shape)} {self.values.dtype.name}{span})")

    @property
    def points(self) -> np.ndarray:
        """PointCloud2 topics: ``values`` as ``[S, max_points, C]`` (padded with NaN)."""
        if self.msgtype != "sensor_msgs/msg/PointCloud2":
            raise TypeError(f"topic {self.topic!r} ({self.msgtype}) holds no point clouds")
        return self.values.reshape(len(self.values), self.info["max_points"], len(self.fields))

    def columns(self, *selectors: str) -> np.ndarray:
        """Column indices of ``fields`` matching the selectors, in selector order.

        A selector is a field name (``"pose.pose.position.x"``) or a prefix ending
        before a ``.`` or ``[`` (``"pose.pose.orientation"``, ``"position"``).
        """
        if self.msgtype == "sensor_msgs/msg/PointCloud2":
            raise TypeError("PointCloud2 values are flattened points; use .points instead")
        picked = []
        for sel in selectors:
            hits = [k for k, f in enumerate(self.fields)
                    if f == sel or f.startswith(sel + ".") or f.startswith(sel + "[")]
            if not hits:
                raise KeyError(f"{sel!r} matches no field of topic {self.topic!r} "
                               f"({self.msgtype}); fields: {_abbreviate(self.fields)}")
            picked += hits
        return np.asarray(picked, np.int64)

    def stream(self, *fields: str, method: str = "linear", offset: float = 0.0,
               tolerance: float | None = None, window: float | None = None,
               dtype=None) -> Stream:
        """A ``Stream`` of the selected fields (all by default) on the bag's relative clock.

        ``dtype`` defaults to float32 (float64 when ``jax_enable_x64`` is on): a
        float64 message field cast to float32 keeps ~7 significant digits.
        """
        values = self.values if not fields else self.values[:, self.columns(*fields)]
        if dtype is None:
            dtype = np.float64 if x64_enabled() else np.float32
        return Stream(values.astype(dtype), self.times, method=method, offset=offset,
                      tolerance=tolerance, window=window)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Bag(Mapping):
    """The topics read from one bag; every topic's ``times`` share ``origin_ns``.

    A read-only mapping topic name -> ``TopicData`` (``bag["/scan"]``,
    ``list(bag)``, ``bag.keys()``, ``bag.items()``, ``len(bag)``, ``"/scan" in
    bag``), in the order the topics were read. ``origin_ns`` is the earliest
    stamp of all topics read, so relative times start at 0 and are exact to
    float32 rounding of the *relative* seconds.
    """

    path: str
    origin_ns: int
    topics: Mapping[str, TopicData]

    def __getitem__(self, topic: str) -> TopicData:
        if topic not in self.topics:
            raise KeyError(f"topic {topic!r} was not read from {self.path}; read: "
                           f"{sorted(self.topics)}")
        return self.topics[topic]

    def __iter__(self) -> Iterator[str]:
        return iter(self.topics)

    def __len__(self) -> int:
        return len(self.topics)

    def __contains__(self, topic) -> bool:
        return topic in self.topics

    # Identity semantics, as before Bag was a Mapping (Mapping would compare contents).
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        rows = [f"{t!r}: {d.msgtype.rsplit('/', 1)[-1]} {tuple(d.values.shape)}"
                for t, d in self.topics.items()]
        shown = ", ".join(rows[:8]) + (f", ... ({len(rows)} topics)" if len(rows) > 8 else "")
        return f"Bag({self.path!r}, origin_ns={self.origin_ns}, {{{shown}}})"

    def relative_seconds(self, stamps_ns) -> np.ndarray:
        """int64 nanoseconds -> seconds since ``origin_ns`` (exact subtraction, then float)."""
        rel = np.asarray(stamps_ns, np.int64) - np.int64(self.origin_ns)
        return integer_seconds(rel).astype(np.float64 if x64_enabled() else np.float32)


def _abbreviate(names: Sequence[str], n: int = 8) -> str:
    names = list(names)
    return str(names) if len(names) <= n else f"{names[:n]} ... ({len(names)} in all)"


def _rosbags():
    try:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore
    except ImportError as err:
        raise ImportError(f"{INSTALL_HINT} ({err})") from err
    return AnyReader, Stores, get_typestore


def _open(path: Path, typestore):
    AnyReader, Stores, get_typestore = _rosbags()
    if typestore is None:  # used only by bags without embedded message definitions
        typestore = get_typestore(getattr(Stores, "LATEST", None) or Stores.ROS2_HUMBLE)
    reader = AnyReader([path], default_typestore=typestore)
    reader.open()
    return reader


def _stamp_ns(msg) -> int:
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def list_topics(path, *, typestore=None) -> dict[str, tuple[str, int]]:
    """``{topic: (msgtype, message count)}`` of a bag (a directory, ``.mcap`` or ``.db3``)."""
    path = _existing(path)
    try:
        reader = _open(path, typestore)
        try:
            return {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}
        finally:
            reader.close()
    except ImportError:
        raise
    except Exception as err:
        raise BagError(f"cannot read bag {path}: {type(err).__name__}: {err}") from err


def _existing(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"bag {path} does not exist")
    return path


def read_bag(path, topics: str | Sequence[str] | None = None, *, point_fields: Sequence[str] = (),
             stamps: str = "header", on_unsupported: str = "raise", typestore=None) -> Bag:
    """Reads topics of a ROS 2 bag (directory with ``metadata.yaml``, ``.mcap`` or ``.db3``).

    Args:
      path: the bag.
      topics: a topic name or a sequence of them (default: every topic with messages).
      point_fields: extra PointCloud2 fields to read after x, y, z (e.g. ``("intensity",)``).
      stamps: ``"header"`` (``header.stamp``, default) or ``"log"`` (the recorder's
        receive time) as each message's timestamp.
      on_unsupported: ``"raise"`` (default) or ``"skip"`` for topics of other types
        when ``topics`` is None; a topic named in ``topics`` always raises.
      typestore: rosbags typestore for bags without embedded message definitions
        (default: rosbags' latest ROS 2 distribution).

    Returns:
      ``Bag`` with one ``TopicData`` per topic.

    Raises:
      FileNotFoundError: no such path.
      UnsupportedMessageError: a topic's type is not in ``SUPPORTED_TYPES`` (names both).
      BagError: the bag is truncated or corrupt, a message does not fit its topic's layout,
        or fewer messages could be read than the bag's index announces. Nothing is
        returned in that case: a bag is read completely or not at all.
    """
    if stamps not in ("header", "log"):
        raise ValueError(f"stamps must be 'header' or 'log', got {stamps!r}")
    if on_unsupported not in ("raise", "skip"):
        raise ValueError(f"on_unsupported must be 'raise' or 'skip', got {on_unsupported!r}")
    if isinstance(topics, str):
        topics = [topics]
    if isinstance(point_fields, str):
        point_fields = [point_fields]
    path = _existing(path)
    point_fields = tuple(point_fields)
    try:
        reader = _open(path, typestore)
    except ImportError:
        raise
    except Exception as err:
        raise BagError(f"cannot open bag {path} (truncated, corrupt or incomplete?): "
                       f"{type(err).__name__}: {err}") from err
    try:
        chosen = _choose_connections(path, reader.connections, topics, on_unsupported)
        collected = _read_messages(path, reader, chosen, point_fields, stamps)
    finally:
        try:
            reader.close()
        except Exception:  # noqa: BLE001 - the primary error (if any) matters more
            pass
    return _assemble(path, collected)


def _choose_connections(path, connections, topics, on_unsupported):
    by_topic: dict[str, list] = {}
    for c in connections:
        by_topic.setdefault(c.topic, []).append(c)
    if topics is None:
        wanted = [t for t, cs in by_topic.items() if sum(c.msgcount for c in cs) > 0]
    else:
        wanted = list(dict.fromkeys(topics))
        absent = [t for t in wanted if t not in by_topic]
        if absent:
            available = {t: cs[0].msgtype for t, cs in sorted(by_topic.items())}
            raise BagError(f"topics {absent} are not in bag {path}; it has {available}")
    chosen = {}
    for topic in wanted:
        msgtypes = sorted({c.msgtype for c in by_topic[topic]})
        if len(msgtypes) > 1:
            raise BagError(f"topic {topic!r} in bag {path} mixes message types {msgtypes}")
        if msgtypes[0] not in SUPPORTED_TYPES:
            if topics is None and on_unsupported == "skip":
                continue
            raise UnsupportedMessageError(
                f"topic {topic!r} has message type {msgtypes[0]!r}, which jax_robocache.io "
                f"cannot convert (supported: {', '.join(SUPPORTED_TYPES)}). Pass topics=[...] "
                "to read other topics only, or on_unsupported='skip'.")
        chosen[topic] = by_topic[topic]
    return chosen


def _read_messages(path, reader, chosen, point_fields, stamps):
    if not chosen:  # (an empty connection filter would mean "every topic" to rosbags)
        return {}
    converters = {t: make_converter(cs[0].msgtype, point_fields) for t, cs in chosen.items()}
    stamp_lists: dict[str, list[int]] = {t: [] for t in chosen}
    counts: dict[int, int] = {}
    connections = [c for cs in chosen.values() for c in cs]
    topic = None
    try:
        for conn, log_ns, raw in reader.messages(connections=connections):
            topic = conn.topic
            msg = reader.deserialize(raw, conn.msgtype)
            converters[topic].add(msg)
            stamp_lists[topic].append(_stamp_ns(msg) if stamps == "header" else int(log_ns))
            counts[id(conn)] = counts.get(id(conn), 0) + 1
        for t in chosen:
            if not stamp_lists[t]:
                raise BagError(f"topic {t!r} has no messages in bag {path}")
    except (BagError, ImportError):
        raise
    except ConversionError as err:
        raise BagError(f"topic {topic!r} in bag {path}: {err}") from None
    except Exception as err:
        where = f" while reading topic {topic!r}" if topic else ""
        raise BagError(f"bag {path} is truncated or corrupt{where}: {type(err).__name__}: "
                       f"{err}") from err
    for c in connections:
        if c.msgcount and counts.get(id(c), 0) != c.msgcount:
            raise BagError(f"bag {path}: topic {c.topic!r} announces {c.msgcount} messages but "
                           f"{counts.get(id(c), 0)} could be read (truncated or corrupt bag)")
    return {t: (converters[t].finish(), np.asarray(stamp_lists[t], np.int64), chosen[t][0].msgtype)
            for t in chosen}


def _assemble(path, collected) -> Bag:
    names = list(collected)
    orders = {t: np.argsort(collected[t][1], kind="stable") for t in names}
    stamps = [collected[t][1][orders[t]] for t in names]
    if names:
        *relative, origin = relative_timestamps(*stamps, unit="ns")
        origin = int(origin)
    else:
        relative, origin = [], 0
    topics = {}
    for t, s, rel in zip(names, stamps, relative):
        (values, fields, info), _, msgtype = collected[t]
        topics[t] = TopicData(topic=t, msgtype=msgtype, fields=tuple(fields), stamps_ns=s,
                              times=rel, values=values[orders[t]], info=_sorted_info(info,
                                                                                     orders[t]))
    return Bag(path=str(path), origin_ns=origin, topics=topics)


def _sorted_info(info: dict, order: np.ndarray) -> dict:
    if "point_counts" in info:  # per-message metadata follows the stamp order
        info = {**info, "point_counts": info["point_counts"][order]}
    return info
