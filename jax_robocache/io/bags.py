"""ROS 2 bags -> ``DatasetSource``: one bag = one episode, each topic a stream on its own clock.

Install with ``pip install 'jax_robocache[io]'``. Each bag is read with ``read_bag``
(same topics, columns and errors: see ``jax_robocache.io``), one after another.
Every topic keeps its own clock: ``times`` are the messages' int64 nanosecond stamps
as recorded (epoch), which ``EpisodeStore`` makes episode-relative exactly. Bags are
decoded into host memory one at a time (rosbags has no random access by field); the
streams keep the decoded values, so the bags read at once must fit in host memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from ._bag import BagError, read_bag
from .diagnostics import DEFAULT_INVALID, Diagnostics, check_timestamps
from .lazy import Concatenated, Rows2D
from .source import DatasetSource, StreamSource

POINTCLOUD = "sensor_msgs/msg/PointCloud2"


def find_bags(path) -> list[Path]:
    """The bags under ``path``: itself if it is a bag (a directory with ``metadata.yaml``,
    or an ``.mcap`` / ``.db3`` file), else its bag subdirectories and ``.mcap`` / ``.db3``
    files, sorted by name."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"bag or directory of bags {path} does not exist")
    if path.is_file() or (path / "metadata.yaml").is_file():
        return [path]
    bags = [p for p in sorted(path.iterdir()) if (p.is_dir() and (p / "metadata.yaml").is_file())
            or (p.is_file() and p.suffix in (".mcap", ".db3"))]
    if not bags:
        raise BagError(f"{path} is neither a bag nor a directory of bags (no metadata.yaml, "
                       ".mcap or .db3 inside)")
    return bags


def read_bags(bags, topics: Sequence[str] | None = None, *, point_fields: Sequence[str] = (),
              stamps: str = "header", on_unsupported: str = "raise", typestore=None,
              rates: Mapping[str, float] | None = None, tolerance_s: float = 1e-4,
              invalid: Iterable[str] = DEFAULT_INVALID) -> DatasetSource:
    """Describes bags as episodes for ``to_store()``.

    Args:
      bags: a bag, a directory of bags (see ``find_bags``), or a list of bags; episode e
        is the e-th bag.
      topics: topics to read (default: those of the first bag, as ``read_bag`` chooses);
        every bag must have them.
      point_fields, stamps, on_unsupported, typestore: as ``read_bag``.
      rates: nominal rate (Hz) per topic for the gap / jitter diagnostics (default none:
        only NaN, duplicate and backward stamps are reported; stamps are sorted by
        ``read_bag``, so backward never occurs).
      tolerance_s, invalid: timestamp diagnostics (``jax_robocache.io.diagnostics``).

    Returns:
      ``DatasetSource`` (format ``"ros2 bags"``): stream = topic, ``values`` as
      ``TopicData.values`` (PointCloud2: padded with NaN to the largest cloud of all bags),
      ``names`` = ``TopicData.fields``, ``times`` int64 ns, ``metadata["bags"]`` the paths,
      ``metadata["origins_ns"]`` each bag's earliest stamp.

    Raises:
      FileNotFoundError, UnsupportedMessageError, BagError as ``read_bag``; BagError if a
      bag lacks a topic or its columns differ from the first bag's (both named).
    """
    paths = find_bags(bags) if isinstance(bags, (str, Path)) else [Path(b) for b in bags]
    if not paths:
        raise ValueError("no bags given")
    topics = None if topics is None else list(dict.fromkeys(topics))
    per_topic: dict[str, list] = {}
    first = None
    origins = []
    for p in paths:
        bag = read_bag(p, topics, point_fields=point_fields, stamps=stamps,
                       on_unsupported=on_unsupported, typestore=typestore)
        if first is None:
            first = bag
            topics = list(bag.topics)
        missing = [t for t in topics if t not in bag.topics]
        if missing:
            raise BagError(f"bag {p} has no messages on {missing}, which {paths[0]} has; pass "
                           "topics= to read the topics every bag has")
        for t in topics:
            td, ref = bag.topics[t], first.topics[t]
            if td.msgtype != ref.msgtype or (td.fields != ref.fields and
                                             td.msgtype != POINTCLOUD):
                raise BagError(f"topic {t!r} in bag {p} has columns {_short(td.fields)} "
                               f"({td.msgtype}), but in {paths[0]} {_short(ref.fields)} "
                               f"({ref.msgtype})")
            per_topic.setdefault(t, []).append(td)
        origins.append(bag.origin_ns)
    streams, reports = {}, []
    ep_ids = np.arange(len(paths), dtype=np.int64)
    for t, datas in per_topic.items():
        values = [d.values for d in datas]
        shape = (values[0].shape[1],)
        if datas[0].msgtype == POINTCLOUD:
            values, shape = _pad_clouds(datas)
        lengths = [len(v) for v in values]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        times = np.concatenate([d.stamps_ns for d in datas]).astype(np.int64)
        rate = (rates or {}).get(t)
        valid, reps = check_timestamps(times, offsets, period=None if rate is None else
                                       1.0 / rate, tolerance=tolerance_s, invalid=invalid,
                                       clock=t, episodes=ep_ids, scale=1e-9)
        reports += reps
        info = dict(datas[0].info)
        info["msgtype"] = datas[0].msgtype
        streams[t] = StreamSource(
            name=t, values=Concatenated([Rows2D(v, name=f"{t} of {p}")
                                         for v, p in zip(values, paths)], name=t),
            shape=shape, offsets=offsets, times=times, valid=None if valid.all() else valid,
            names=datas[0].fields, info=info)
    label = paths[0] if len(paths) == 1 else paths[0].parent
    return DatasetSource(path=str(label), format="ros2 bags", episodes=ep_ids, streams=streams,
                         diagnostics=Diagnostics(tuple(reports)),
                         metadata={"bags": [str(p) for p in paths], "origins_ns": origins})


def _short(fields) -> str:
    fields = list(fields)
    return str(fields) if len(fields) <= 6 else f"{fields[:6]} ... ({len(fields)} in all)"


def _pad_clouds(datas):
    """Each bag's clouds padded with NaN to the largest cloud over all bags."""
    C = len(datas[0].fields)
    if any(len(d.fields) != C or d.fields != datas[0].fields for d in datas):
        raise BagError("PointCloud2 point fields differ between bags: "
                       f"{[d.fields for d in datas]}")
    n_max = max(d.info["max_points"] for d in datas)
    out = []
    for d in datas:
        pts = d.points
        padded = np.full((len(pts), n_max, C), np.nan, pts.dtype)
        padded[:, :pts.shape[1]] = pts
        out.append(padded.reshape(len(pts), n_max * C))
    dtypes = {v.dtype for v in out}
    if len(dtypes) > 1:
        common = np.result_type(*dtypes)
        out = [v.astype(common) for v in out]  # float32 -> float64 promotion is exact
    return out, (n_max, C)
