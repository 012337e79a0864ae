"""``DatasetSource``: a dataset described on the host; ``to_store()`` moves it to the device.

Every reader (``read_lerobot``, ``read_zarr``, ``read_hdf5``, ``read_bags``)
returns a ``DatasetSource``. Its heavy part, each stream's values, is a lazily
sliceable ``[N, D]`` view over the files (``jax_robocache.io.lazy``): nothing is
read until ``to_store()`` copies it to the device chunk by chunk
(``EpisodeStore.from_flat``), so a dataset larger than host memory streams
through. Clocks, masks, offsets, the frame index of videos, the dataset's own
statistics and the timestamp diagnostics are small and held in host memory.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .diagnostics import Diagnostics
from .lazy import AsFloat32, Rows2D


@dataclasses.dataclass(frozen=True, eq=False)
class StreamSource:
    """One stream of E episodes, flat.

    Attributes:
      name: the stream's name in the dataset (a LeRobot feature, a zarr key, an HDF5
        path relative to the episode, a ROS topic).
      values: ``[N, D]`` lazily sliceable (``values[a:b]`` reads those rows only);
        D is the product of ``shape``.
      shape: the shape of one sample in the dataset (``values`` rows are it flattened, C order).
      offsets: ``[E + 1]`` int64; episode e holds rows ``offsets[e]:offsets[e + 1]``.
      times: ``[N]`` the stream's clock exactly as stored (float seconds, or int64
        nanoseconds), or None where the dataset has no clock (then ``fps`` applies).
      valid: ``[N]`` bool (see ``jax_robocache.io.diagnostics``), or None (all valid).
      names: names of the D columns (or of the last axis) when the dataset gives them.
      info: anything else the dataset says about this stream.
    """

    name: str
    values: Any
    shape: tuple[int, ...]
    offsets: np.ndarray
    times: np.ndarray | None = None
    valid: np.ndarray | None = None
    names: Any = None
    info: Mapping = dataclasses.field(default_factory=dict)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.values.dtype)

    @property
    def num_samples(self) -> int:
        return int(self.values.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def episode(self, e: int) -> np.ndarray:
        """Episode e's values ``[n_e, *shape]`` (read now)."""
        a, b = int(self.offsets[e]), int(self.offsets[e + 1])
        return np.asarray(self.values[a:b]).reshape((b - a,) + tuple(self.shape))

    def sorted_times(self) -> np.ndarray | None:
        """``times`` with each invalid sample's stamp raised to the latest stamp before it
        (per episode), so the clock handed to the store is sorted; valid stamps unchanged."""
        if self.times is None or self.valid is None or self.valid.all():
            return self.times
        t = np.array(self.times)
        for e in range(len(self.offsets) - 1):
            a, b = int(self.offsets[e]), int(self.offsets[e + 1])
            if b > a and not self.valid[a:b].all():
                seg = t[a:b]
                fill = np.where(self.valid[a:b], seg, _lowest(seg.dtype))
                running = np.maximum.accumulate(fill)
                first_valid = seg[np.argmax(self.valid[a:b])] if self.valid[a:b].any() else 0
                running = np.where(running == _lowest(seg.dtype), first_valid, running)
                t[a:b] = np.where(self.valid[a:b], seg, running)
        return t


def _floating(name: str, values):
    """Values as the store holds them: floating dtypes unchanged, others exactly float32."""
    if np.dtype(values.dtype).kind in "biu":
        if not hasattr(values, "_read"):
            values = Rows2D(values, name=name)
        return AsFloat32(values, name=name)
    return values


def _lowest(dtype):
    return -np.inf if np.dtype(dtype).kind == "f" else np.iinfo(dtype).min


@dataclasses.dataclass(frozen=True, eq=False)
class FrameIndex:
    """Where each frame of a visual feature lives, without decoding it.

    One entry per frame row of the dataset (same rows and ``offsets`` as the streams):
    ``files[file[i]]`` holds it, at ``frame[i]`` (0-based frame number in that file)
    and ``file_time[i]`` seconds from the file's start (what a decoder seeks to);
    ``times[i]`` is the frame's timestamp in its episode. ``kind`` is ``"video"``
    (an MP4 per episode or per group of episodes) or ``"image"`` (encoded image bytes
    in a Parquet row: ``frame`` is the row in that file). Attach precomputed frame
    embeddings as another stream with these ``times`` and ``offsets``.
    """

    name: str
    kind: str
    files: tuple[str, ...]
    file: np.ndarray
    frame: np.ndarray
    file_time: np.ndarray
    times: np.ndarray
    offsets: np.ndarray
    info: Mapping = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, eq=False)
class DatasetSource:
    """A dataset described on the host, ready to be moved to the device.

    Attributes:
      path: where it was read from.
      format: ``"lerobot v3.0"``, ``"lerobot v2.1"``, ``"zarr replay buffer"``,
        ``"hdf5 robomimic"``, ``"hdf5 aloha"``, ``"ros2 bags"``.
      episodes: ``[E]`` int64, the dataset's own id of each episode, in store order.
      streams: name -> ``StreamSource``.
      fps: the dataset's nominal rate (Hz) if it has one; the clock of streams without ``times``.
      frames: name -> ``FrameIndex`` of undecoded visual features (videos, images).
      stats: the dataset's own statistics (feature -> stat -> array), or None.
      diagnostics: timestamp irregularities per episode, or None (no clock to check).
      metadata: the rest (the dataset's info, tasks, attributes, per-episode stats ...).
    """

    path: str
    format: str
    episodes: np.ndarray
    streams: Mapping[str, StreamSource]
    fps: float | None = None
    frames: Mapping[str, FrameIndex] = dataclasses.field(default_factory=dict)
    stats: Mapping | None = None
    diagnostics: Diagnostics | None = None
    metadata: Mapping = dataclasses.field(default_factory=dict)
    closer: Callable[[], None] | None = dataclasses.field(default=None, repr=False)

    @property
    def num_episodes(self) -> int:
        return int(len(self.episodes))

    def __getitem__(self, name: str) -> StreamSource:
        if name not in self.streams:
            raise KeyError(f"stream {name!r} was not read from {self.path}; streams: "
                           f"{sorted(self.streams)}")
        return self.streams[name]

    def nbytes(self) -> dict[str, int]:
        """Bytes of each stream's values (what ``to_store`` copies, before any cast)."""
        return {k: int(s.values.shape[0]) * int(np.prod(s.values.shape[1:], dtype=np.int64))
                * s.dtype.itemsize for k, s in self.streams.items()}

    def flat(self, streams: Sequence[str] | None = None) -> dict[str, Any]:
        """The keyword arguments of ``EpisodeStore.from_flat`` for the chosen streams."""
        names = list(self.streams) if streams is None else list(streams)
        for n in names:
            self[n]
        chosen = {n: self.streams[n] for n in names}
        timed = {n: s.sorted_times() for n, s in chosen.items() if s.times is not None}
        masks = {n: s.valid for n, s in chosen.items() if s.valid is not None}
        untimed = [n for n in chosen if n not in timed]
        if untimed and self.fps is None:
            raise ValueError(f"streams {untimed} of {self.path} have no timestamps and the "
                             "dataset no fps: pass fps= to the reader")
        # bags: times measured from each bag's origin_ns, as the bag's own TopicData.times
        origins = self.metadata.get("origins_ns") if timed else None
        return dict(values={n: _floating(n, s.values) for n, s in chosen.items()},
                    offsets={n: s.offsets for n, s in chosen.items()},
                    times=timed or None, fps=self.fps if untimed else None,
                    valid=masks or None,
                    origins=None if origins is None else np.asarray(origins, np.int64))

    def to_store(self, streams: Sequence[str] | None = None, *, device=None,
                 chunk_bytes: int = 64 << 20):
        """An ``EpisodeStore`` on ``device`` holding the chosen streams (default: all).

        Values are copied chunk by chunk (``chunk_bytes`` each) straight from the files.
        Integer and bool streams (LeRobot's ``task_index``, flags, ``uint8`` pixels) become
        float32, exactly: a value float32 cannot hold raises naming the stream.
        Stamps of samples marked invalid are raised to the latest earlier stamp so that
        every clock the store receives is sorted (``StreamSource.sorted_times``).
        """
        from ..episodes.store import EpisodeStore

        return EpisodeStore.from_flat(**self.flat(streams), device=device,
                                      chunk_bytes=chunk_bytes)

    def close(self) -> None:
        """Releases open files (HDF5, zip stores); the lazy values cannot be read after."""
        if self.closer is not None:
            self.closer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        streams = ", ".join(f"{k}: {s.values.shape[1]}x{s.dtype}" for k, s in
                            self.streams.items())
        return (f"DatasetSource({self.format!r}, {self.path!r}, {self.num_episodes} episodes, "
                f"streams {{{streams}}}, frames {sorted(self.frames)}, fps={self.fps})")
