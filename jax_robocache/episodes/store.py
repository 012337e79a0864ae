"""``EpisodeStore``: a dataset of episodes on the device, one flat ragged array per stream.

A stream (``RaggedStream``) holds every episode's samples back to back:
``values [N, D]``, ``times [N]`` (seconds relative to the episode's origin),
``offsets [E + 1]`` int32 (episode e is rows ``offsets[e]:offsets[e + 1]``)
and an optional per-sample mask ``valid [N]``. Streams have their own clocks
and sample counts; they share the episode count E and, for host epoch
timestamps, one origin per episode.

Construction (eager, on the host) checks everything a kernel would otherwise
read wrongly, and names the stream and episode of the first problem:
offsets (start at 0, non-decreasing, end at N), lengths of times / masks,
NaN / infinite or decreasing times within an episode, value dtypes (float16,
bfloat16, float32; float64 under x64, otherwise cast to float32 as JAX does),
dtype mixes between the episodes of a stream, mixes of time representations
between streams. Empty episodes are allowed (their windows are all invalid).
The store refuses, before copying, what does not fit the device's free memory
(where ``device.memory_stats()`` reports it; not on CPU).

Timestamps: float32 seconds are taken as episode-relative; float64 seconds and
int64 nanoseconds (host epoch stamps) are made relative exactly, with one
origin per episode shared by all its streams (the smallest first timestamp of
the episode's non-empty timed streams, ``jax_robocache.relative_timestamps``'
rule), kept on the host in ``store.origins``; streams given ``fps`` instead
have ``t = i / fps`` (i: the sample's index in its episode), relative to the
same origin; streams given integer frame numbers (``frames``) and ``fps`` have
``t = frame / fps`` (dropped frames keep their gap). Device times are float32
(float64 under ``jax_enable_x64``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..jax_compat import x64_enabled

__all__ = ["EpisodeStore", "RaggedStream", "StoreError"]

#: Host value dtypes accepted as they are (float64 only under x64).
_VALUE_DTYPES = ("float16", "bfloat16", "float32", "float64")


class StoreError(ValueError):
    """Input an ``EpisodeStore`` cannot hold correctly (names the stream and episode)."""


# -- the pytrees ---------------------------------------------------------------
@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True)
class RaggedStream:
    """One stream of every episode, flat on the device.

    Attributes:
      values: ``[N, D]`` float32 / bfloat16 / float16 (float64 under x64).
      times: ``[N]`` seconds relative to the episode's origin, sorted within
        each episode (float32; float64 under x64).
      offsets: ``[E + 1]`` int32, ``offsets[0] == 0``, non-decreasing,
        ``offsets[E] == N``; episode e is rows ``offsets[e]:offsets[e + 1]``.
      valid: ``[N]`` bool per-sample mask, or None (all valid); a window entry
        that reads a masked sample is invalid.
      max_length: static: the longest episode (bounds the kernel's searches);
        None means unknown (N is used).
    """

    values: Any
    times: Any
    offsets: Any
    valid: Any = None
    max_length: int | None = None

    def tree_flatten(self):
        return (self.values, self.times, self.offsets, self.valid), (self.max_length,)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, *aux)

    @property
    def num_episodes(self) -> int:
        return self.offsets.shape[0] - 1

    def lengths(self):
        """``[E]`` int32 samples per episode."""
        return jnp.diff(self.offsets)

    def replace(self, **changes) -> "RaggedStream":
        """A copy with some fields replaced (e.g. ``values`` to differentiate by them)."""
        return dataclasses.replace(self, **changes)

    def nbytes(self) -> int:
        """Bytes this stream holds on the device."""
        arrays = (self.values, self.times, self.offsets, self.valid)
        return int(sum(x.size * jnp.dtype(x.dtype).itemsize for x in arrays if x is not None))


class _HostMeta:
    """Host-side metadata of a store (origins), static in the pytree: compared by content
    digest so equal stores share jit caches without comparing arrays element-wise."""

    def __init__(self, origins: np.ndarray | None, origin_unit: str | None):
        self.origins = origins
        self.origin_unit = origin_unit
        digest = hashlib.sha1(b"" if origins is None else
                              (origins.dtype.str.encode() + origins.tobytes()),
                              usedforsecurity=False).hexdigest()  # a cache key, not security
        self._key = (digest, origin_unit)

    def __eq__(self, other):
        return isinstance(other, _HostMeta) and self._key == other._key

    def __hash__(self):
        return hash(self._key)


@jax.tree_util.register_pytree_node_class
class EpisodeStore:
    """E episodes of named streams on the device (a pytree: passes through ``jit``, and
    ``jax.device_put(store, replicated_sharding)`` replicates it).

    Attributes:
      streams: dict name -> ``RaggedStream`` (sorted by name).
      num_episodes: E.
      origins: host ``[E]`` origin of each episode in the input's units (int64 ns or
        float64 s) when epoch timestamps were given, else None.
      origin_unit: ``"ns"``, ``"s"`` or None.
    """

    def __init__(self, streams: Mapping[str, RaggedStream], num_episodes: int | None = None,
                 meta: _HostMeta | None = None):
        names = tuple(sorted(streams))
        if not names:
            raise StoreError("an EpisodeStore needs at least one stream")
        self.streams = {n: streams[n] for n in names}
        for n, s in self.streams.items():
            if not isinstance(s, RaggedStream):
                raise TypeError(f"streams[{n!r}] must be a RaggedStream, got {type(s).__name__}")
        counts = {n: s.num_episodes for n, s in self.streams.items()}
        if num_episodes is None:
            num_episodes = counts[names[0]]
        if any(c != num_episodes for c in counts.values()):
            raise StoreError(f"every stream needs offsets [E + 1] with E = {num_episodes}; "
                             f"episode counts: {counts}")
        self.num_episodes = int(num_episodes)
        self._meta = meta or _HostMeta(None, None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.streams)

    @property
    def origins(self) -> np.ndarray | None:
        return self._meta.origins

    @property
    def origin_unit(self) -> str | None:
        return self._meta.origin_unit

    @property
    def time_dtype(self):
        return self.streams[self.names[0]].times.dtype

    def __getitem__(self, name: str) -> RaggedStream:
        return self.streams[name]

    def __repr__(self) -> str:
        desc = ", ".join(f"{n}: {tuple(s.values.shape)} {jnp.dtype(s.values.dtype).name}"
                         for n, s in self.streams.items())
        return f"EpisodeStore(E={self.num_episodes}, {desc})"

    def tree_flatten(self):
        return (tuple(self.streams.values()),), (self.names, self.num_episodes, self._meta)

    @classmethod
    def tree_unflatten(cls, aux, children):
        names, num_episodes, meta = aux
        store = object.__new__(cls)
        store.streams = dict(zip(names, children[0]))
        store.num_episodes = num_episodes
        store._meta = meta
        return store

    def replace(self, **streams: RaggedStream) -> "EpisodeStore":
        """A store with some streams replaced (same episodes, same origins), e.g.
        ``store.replace(state=store["state"].replace(values=v))`` inside a loss."""
        unknown = sorted(set(streams) - set(self.streams))
        if unknown:
            raise KeyError(f"replace names streams the store does not hold: {unknown}")
        for name, s in streams.items():
            if not isinstance(s, RaggedStream):
                raise TypeError(f"replace({name}=...) needs a RaggedStream, got "
                                f"{type(s).__name__}")
        children = (tuple(streams.get(n, s) for n, s in self.streams.items()),)
        return self.tree_unflatten((self.names, self.num_episodes, self._meta), children)

    def nbytes(self) -> dict[str, int]:
        """Bytes per stream on the device (values, times, offsets and mask)."""
        return {n: s.nbytes() for n, s in self.streams.items()}

    # -- normalisation statistics (stats.py) ----------------------------------------
    def stats(self, streams=None, *, quantiles=(0.01, 0.99)) -> dict:
        """Per stream (default: every stream) ``StreamStats``: count, mean, std, min, max and
        ``quantiles`` per feature over every sample of every episode whose mask is set
        (docs/stats.md). Save them with ``stats.save_stats`` (LeRobot's stats.json keys)."""
        from .stats import stream_stats
        names = self.names if streams is None else (
            (streams,) if isinstance(streams, str) else tuple(streams))
        for name in names:
            if name not in self.streams:
                raise KeyError(f"stats: the store has no stream {name!r}; it has {self.names}")
        return {n: stream_stats(self.streams[n].values, self.streams[n].valid,
                                quantiles=quantiles) for n in names}

    # -- sampling (sampling.py) ----------------------------------------------------
    def anchor_table(self, reference: str = "action", require=None, weights=None):
        """The anchors of ``reference`` that ``sample_anchors`` / ``epoch`` draw from."""
        from .sampling import AnchorTable
        return AnchorTable.build(self, reference, require=require, weights=weights)

    def sample_anchors(self, key, batch_size: int, reference: str = "action", require=None,
                       weights=None):
        """``Anchors(episode [B], anchor [B])`` drawn inside ``jit``; see ``sampling.py``."""
        return self.anchor_table(reference, require, weights).sample(key, batch_size)

    def epoch(self, key, batch_size: int, reference: str = "action", require=None,
              weights=None, drop_last: bool = False):
        """An iterator over every eligible anchor once, in a ``key``-determined order."""
        from .sampling import EpochIterator
        return EpochIterator(self.anchor_table(reference, require, weights), key, batch_size,
                             drop_last=drop_last)

    # -- construction ----------------------------------------------------------------
    @classmethod
    def from_episodes(cls, values: Mapping[str, Sequence], times: Mapping[str, Sequence] | None
                      = None, *, fps: float | Mapping[str, float] | None = None,
                      valid: Mapping[str, Sequence] | None = None, device=None,
                      origins=None, frames: Mapping[str, Sequence] | None = None
                      ) -> "EpisodeStore":
        """Builds a store from per-episode host arrays.

        Args:
          values: name -> one ``[n_e, D]`` (or ``[n_e]``) array per episode (an empty
            episode may be any empty array: it takes the stream's D and dtype).
          times: name -> one ``[n_e]`` array per episode: float32 relative seconds,
            or float64 seconds / int64 nanoseconds (epoch stamps, made relative).
            Streams without times need ``fps``.
          fps: one rate for every stream without times, or name -> rate.
          frames: name -> one ``[n_e]`` integer array of frame numbers per episode
            (LeRobot's ``frame_index``), for streams that have frame numbers but no
            stamps: ``t = frame / fps`` with the stream's ``fps``, so dropped frames keep
            their gap (without ``frames``, sample i of an episode is at ``i / fps``).
          valid: name -> one ``[n_e]`` bool mask per episode (optional).
          device: where to put the store (default: JAX's default device).
          origins: epoch stamps only: ``[E]`` the stamp (the times' units) each episode's
            times are measured from; default the earliest first stamp of its streams.
        """
        values, times, valid = _mapping("values", values), _mapping("times", times or {}), \
            _mapping("valid", valid or {})
        frames = _mapping("frames", frames or {})
        _check_names(values, times, valid, frames)
        counts = {n: _episode_count(f"values[{n!r}]", v) for n, v in values.items()}
        E = _common_episode_count(counts)
        flat_values, flat_times, flat_valid, flat_frames, offsets = {}, {}, {}, {}, {}
        for name, episodes in values.items():
            arrays = _empty_like_others([_episode_values(name, e, x)
                                         for e, x in enumerate(episodes)])
            _check_episode_dtypes(name, arrays)
            widths = {a.shape[1] for a in arrays}
            if len(widths) > 1:
                e = next(e for e, a in enumerate(arrays) if a.shape[1] != arrays[0].shape[1])
                raise StoreError(f"values[{name!r}] episode {e} has {arrays[e].shape[1]} "
                                 f"columns, episode 0 has {arrays[0].shape[1]}: every episode "
                                 "of a stream needs the same D")
            lengths = np.array([len(a) for a in arrays], np.int64)
            offsets[name] = np.concatenate([[0], np.cumsum(lengths)])
            flat_values[name] = (np.concatenate(arrays) if arrays else
                                 np.zeros((0, 1), np.float32))
            for label, given, flat in (("times", times, flat_times),
                                       ("frames", frames, flat_frames)):
                if name not in given:
                    continue
                ts = given[name]
                if _episode_count(f"{label}[{name!r}]", ts) != E:
                    raise StoreError(f"{label}[{name!r}] has {len(ts)} episodes, "
                                     f"values[{name!r}] has {E}")
                ts = _empty_like_others([_episode_times(name, e, t, lengths[e], label)
                                         for e, t in enumerate(ts)])
                _check_episode_dtypes(name, ts, what=label)
                flat[name] = np.concatenate(ts)
            if name in valid:
                ms = valid[name]
                if _episode_count(f"valid[{name!r}]", ms) != E:
                    raise StoreError(f"valid[{name!r}] has {len(ms)} episodes, values[{name!r}] "
                                     f"has {E}")
                flat_valid[name] = np.concatenate(
                    [_episode_mask(name, e, m, lengths[e]) for e, m in enumerate(ms)])
        return cls.from_flat(flat_values, offsets, flat_times, fps=fps, valid=flat_valid,
                             device=device, origins=origins, frames=flat_frames)

    @classmethod
    def from_flat(cls, values: Mapping[str, Any], offsets, times: Mapping[str, Any] | None = None,
                  *, fps=None, valid: Mapping[str, Any] | None = None, device=None,
                  chunk_bytes: int = 64 << 20, origins=None,
                  frames: Mapping[str, Any] | None = None) -> "EpisodeStore":
        """Builds a store from flat arrays, read and copied to the device chunk by chunk.

        Args:
          values: name -> ``[N, D]`` (or ``[N]``) array; any sliceable array
            (``np.ndarray``, ``np.memmap``, ``zarr.Array``, ``h5py.Dataset``): only
            ``chunk_bytes`` of it are on the host at a time.
          offsets: one ``[E + 1]`` integer array shared by every stream, or name -> ``[E + 1]``.
          times: name -> ``[N]`` (sliceable): as in ``from_episodes``.
          fps, valid, device, origins, frames: as in ``from_episodes`` (``valid``: name ->
            ``[N]`` bool; ``frames``: name -> ``[N]`` integers).
          chunk_bytes: host bytes read per copy.
        """
        from . import _build
        return _build.build(cls, RaggedStream, _HostMeta, values, offsets, times or {}, fps=fps,
                            valid=valid or {}, device=device, chunk_bytes=chunk_bytes,
                            origins=origins, frames=frames or {})

    @classmethod
    def from_bags(cls, bags: Sequence, streams: Mapping[str, Any], *, device=None
                  ) -> "EpisodeStore":
        """One episode per ``jax_robocache.io.read_bag`` result.

        Args:
          bags: ``Bag`` objects (one per episode).
          streams: name -> topic, or name -> ``(topic, fields)`` with ``fields`` a
            tuple of ``TopicData.columns`` selectors.
        Header stamps (int64 ns) are made relative to each bag's ``origin_ns``, so the
        store's times equal ``bag[topic].times``.
        """
        values, times = {}, {}
        for name, sel in streams.items():
            topic, fields = (sel, ()) if isinstance(sel, str) else (sel[0], tuple(sel[1]))
            values[name], times[name] = [], []
            for k, bag in enumerate(bags):
                try:
                    data = bag[topic]
                except KeyError:
                    raise StoreError(f"streams[{name!r}]: bag {k} has no topic {topic!r}") from None
                v = data.values if not fields else data.values[:, data.columns(*fields)]
                values[name].append(v)
                times[name].append(np.asarray(data.stamps_ns, np.int64))
        return cls.from_episodes(values, times, device=device,
                                 origins=np.array([b.origin_ns for b in bags], np.int64))


# -- from_episodes' per-episode checks ---------------------------------------------------
def _mapping(label, x) -> dict:
    if not isinstance(x, Mapping):
        raise TypeError(f"{label} must be a mapping stream name -> arrays, got "
                        f"{type(x).__name__}")
    for k in x:
        if not isinstance(k, str):
            raise TypeError(f"{label} keys must be stream names (str), got {k!r}")
    return dict(x)


def _check_names(values, times, valid, frames):
    if not values:
        raise StoreError("values must name at least one stream")
    for label, m in (("times", times), ("valid", valid), ("frames", frames)):
        extra = sorted(set(m) - set(values))
        if extra:
            raise StoreError(f"{label} names streams without values: {extra}; streams: "
                             f"{sorted(values)}")


def _episode_count(label, seq) -> int:
    if isinstance(seq, (np.ndarray, jax.Array)) or not isinstance(seq, Sequence):
        raise TypeError(f"{label} must be a list with one array per episode, got "
                        f"{type(seq).__name__}; for flat arrays use EpisodeStore.from_flat")
    return len(seq)


def _common_episode_count(counts: dict) -> int:
    if len(set(counts.values())) > 1:
        raise StoreError(f"every stream needs one array per episode; episode counts differ: "
                         f"{counts}")
    E = next(iter(counts.values()))
    if E < 1:
        raise StoreError("an EpisodeStore needs at least one episode, got 0")
    return E


def _host(x):
    return np.asarray(x)


def _episode_values(name, e, x) -> np.ndarray:
    a = _host(x)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise StoreError(f"values[{name!r}] episode {e} must be [n, D] (or [n]), got shape "
                         f"{a.shape}")
    return a


def _episode_times(name, e, t, n, label="times") -> np.ndarray:
    a = _host(t)
    if a.ndim != 1 or a.shape[0] != n:
        raise StoreError(f"{label}[{name!r}] episode {e} must be [n] with n = {n} (its values' "
                         f"rows), got shape {a.shape}")
    return a


def _empty_like_others(arrays):
    """Empty episodes (``[]``, ``np.zeros(0)``) take the shape past the first axis and the
    dtype of the stream's first non-empty episode."""
    ref = next((a for a in arrays if a.shape[0] > 0), None)
    if ref is None:
        return arrays
    return [np.zeros((0,) + ref.shape[1:], ref.dtype) if a.shape[0] == 0 else a
            for a in arrays]


def _episode_mask(name, e, m, n) -> np.ndarray:
    a = _host(m)
    if n == 0 and a.size == 0:
        return np.zeros(0, np.bool_)
    if a.dtype != np.bool_:
        raise StoreError(f"valid[{name!r}] episode {e} must be a bool mask, got {a.dtype.name}")
    if a.shape != (n,):
        raise StoreError(f"valid[{name!r}] episode {e} must be [n] with n = {n}, got shape "
                         f"{a.shape}")
    return a


def _check_episode_dtypes(name, arrays, what="values"):
    for e, a in enumerate(arrays):
        if a.dtype != arrays[0].dtype:
            raise StoreError(f"{what}[{name!r}] mixes dtypes: episode 0 is "
                             f"{arrays[0].dtype.name}, episode {e} is {a.dtype.name}; cast "
                             "every episode of a stream to one dtype")


def time_dtype():
    """The store's device time dtype: float32, float64 under x64."""
    return np.float64 if x64_enabled() else np.float32


def value_dtype(name: str, dtype) -> np.dtype:
    """The device dtype of a stream's values (float64 -> float32 without x64, as JAX does)."""
    dtype = np.dtype(dtype)
    if dtype.name not in _VALUE_DTYPES:
        raise StoreError(f"values[{name!r}] has dtype {dtype.name}; streams hold float16, "
                         "bfloat16, float32 (float64 under x64): cast it first (e.g. "
                         "x.astype(np.float32))")
    if dtype == np.float64 and not x64_enabled():
        return np.dtype(np.float32)
    return dtype


def fits(total: int, device) -> None:
    """Raises MemoryError when ``total`` bytes exceed the device's free memory (if known)."""
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # backends without memory statistics (CPU)
        stats = None
    if not stats or "bytes_limit" not in stats:
        return
    free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    if total > free:
        raise MemoryError(f"the EpisodeStore needs {total / 2**30:.2f} GiB on {device}, which has "
                          f"{free / 2**30:.2f} GiB free (of {int(stats['bytes_limit']) / 2**30:.2f}"
                          " GiB); store fewer episodes or streams, or narrower dtypes (bfloat16)")

