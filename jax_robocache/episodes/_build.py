"""Builds an ``EpisodeStore`` from flat, sliceable host arrays, chunk by chunk.

Two passes over each stream's times (checks and per-episode first stamps,
then the conversion to relative seconds) and one over its values and mask;
at most ``chunk_bytes`` of any array is on the host at a time, and the device
buffers are filled in place (a donated ``dynamic_update_slice``), so a dataset
larger than host memory (``np.memmap``, ``zarr``, ``h5py``) streams in.
"""

from __future__ import annotations

import functools
import warnings
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..streams.timestamps import _FLOAT32_SAFE_SPAN_S, integer_seconds, unresolved_spans
from .store import StoreError, fits, time_dtype, value_dtype

#: Time representations: relative float32 seconds, epoch float64 seconds, epoch int ns,
#: integer frame numbers (with the stream's fps: relative seconds frame / fps).
REL32, EPOCH_S, EPOCH_NS = "float32 seconds", "float64 seconds", "integer nanoseconds"
FRAMES = "frame numbers"
#: Integer stamps whose mean spacing in an episode is below this many ns (1 MHz, the fastest
#: rate supported) are refused as nanoseconds: they look like frame numbers.
_MIN_NS_SPACING = 1000


def _names(values, times, valid, frames) -> tuple[str, ...]:
    for label, m in (("values", values), ("times", times), ("valid", valid), ("frames", frames)):
        if not isinstance(m, Mapping):
            raise TypeError(f"{label} must be a mapping stream name -> array, got "
                            f"{type(m).__name__}")
    if not values:
        raise StoreError("values must name at least one stream")
    bad = [k for k in values if not isinstance(k, str)]
    if bad:
        raise TypeError(f"stream names must be strings, got {bad}")
    for label, m in (("times", times), ("valid", valid), ("frames", frames)):
        extra = sorted(set(m) - set(values))
        if extra:
            raise StoreError(f"{label} names streams without values: {extra}; streams: "
                             f"{sorted(values)}")
    both = sorted(set(times) & set(frames))
    if both:
        raise StoreError(f"streams {both} have both times and frames: give one of them")
    return tuple(sorted(values))


def _offsets(name, offsets, N) -> np.ndarray:
    label = f"offsets[{name!r}]" if name is not None else "offsets"
    o = np.asarray(offsets)
    if o.ndim != 1 or o.shape[0] < 2:
        raise StoreError(f"{label} must be [E + 1] with E >= 1 episodes, got shape {o.shape}")
    if not np.issubdtype(o.dtype, np.integer):
        raise StoreError(f"{label} must be integers, got {o.dtype.name}")
    o = o.astype(np.int64)
    if o[0] != 0:
        raise StoreError(f"{label}[0] must be 0, got {o[0]}")
    d = np.diff(o)
    if (d < 0).any():
        e = int(np.flatnonzero(d < 0)[0])
        raise StoreError(f"{label} must be non-decreasing: episode {e} would have "
                         f"{o[e + 1]} - {o[e]} = {d[e]} samples")
    if o[-1] != N:
        raise StoreError(f"{label}[-1] = {o[-1]} must equal the number of samples of stream "
                         f"{name!r}, N = {N} (the rows of its values)")
    if N >= 2**31:
        raise StoreError(f"stream {name!r} has {N} samples; int32 offsets hold at most 2**31 - 1")
    return o


def _time_kind(name, t) -> str:
    dtype = np.dtype(t.dtype).newbyteorder("=")  # big-endian files: the same kinds
    if dtype == np.float32:
        return REL32
    if dtype == np.float64:
        return EPOCH_S
    if dtype in (np.int64, np.uint64):
        return EPOCH_NS
    if np.issubdtype(dtype, np.integer):  # int32 nanoseconds span 2 s: frame numbers, rather
        raise StoreError(f"times[{name!r}] has dtype {dtype.name}: integer times are "
                         "nanoseconds and must be int64; pass frame numbers as frames= with "
                         "the stream's fps=")
    raise StoreError(f"times[{name!r}] has dtype {dtype.name}; use float32 relative seconds, "
                     "float64 seconds or int64 nanoseconds")


class _Stream:
    """One stream's host description while the store is built."""

    def __init__(self, name, values, offsets, times, fps, valid, frames=None):
        self.name = name
        shape = tuple(values.shape)
        if len(shape) not in (1, 2):
            raise StoreError(f"values[{name!r}] must be [N, D] (or [N]), got shape {shape}")
        self.values, self.N = values, shape[0]
        self.D = shape[1] if len(shape) == 2 else 1
        self.dtype = value_dtype(name, values.dtype)
        self.offsets = _offsets(name, offsets, self.N)
        self.times, self.fps, self.kind = times, None, None
        if frames is not None:
            if tuple(frames.shape) != (self.N,) or not np.issubdtype(frames.dtype, np.integer):
                raise StoreError(f"frames[{name!r}] must be integer frame numbers [N] with N = "
                                 f"{self.N}, got {np.dtype(frames.dtype).name} "
                                 f"{tuple(frames.shape)}")
            if fps is None:
                raise StoreError(f"frames[{name!r}] needs the stream's rate: pass fps= (one "
                                 f"rate, or {{{name!r}: rate}})")
            self.times, self.kind = frames, FRAMES
        if times is not None:
            if tuple(times.shape) != (self.N,):
                raise StoreError(f"times[{name!r}] must be [N] with N = {self.N} (its values' "
                                 f"rows), got shape {tuple(times.shape)}")
            self.kind = _time_kind(name, times)
        else:
            if fps is None:
                raise StoreError(f"stream {name!r} has neither times nor fps: pass "
                                 f"times[{name!r}] or fps=")
            rate = float(fps)
            if not (np.isfinite(rate) and rate > 0):
                raise StoreError(f"fps of stream {name!r} must be a finite rate > 0, got {fps!r}")
            self.fps = rate
        self.valid = valid
        if valid is not None:
            if tuple(valid.shape) != (self.N,) or np.dtype(valid.dtype) != np.bool_:
                raise StoreError(f"valid[{name!r}] must be a bool mask [N] with N = {self.N}, "
                                 f"got {np.dtype(valid.dtype).name} {tuple(valid.shape)}")
        lengths = np.diff(self.offsets)
        self.max_length = int(lengths.max()) if lengths.size else 0

    def episode_of(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.offsets, rows, side="right") - 1

    def chunks(self, row_bytes: int, chunk_bytes: int):
        rows = max(1, chunk_bytes // max(row_bytes, 1))
        for s in range(0, self.N, rows):
            yield s, min(s + rows, self.N)


def _scan_times(s: _Stream, chunk_bytes: int) -> np.ndarray | None:
    """Pass 1: finite, sorted within each episode; returns each episode's first stamp (the
    input's units, NaN for an empty episode) when the stamps are epoch stamps."""
    E = s.offsets.shape[0] - 1
    firsts = np.full(E, np.nan) if s.kind == EPOCH_S else np.zeros(E, np.int64)
    ends = np.zeros((2, E), np.float32)  # float32 seconds: each episode's first and last
    ns_ends = np.zeros((2, E), np.int64)  # int64 nanoseconds: the same
    nonempty = np.diff(s.offsets) > 0
    prev = None  # (episode, last stamp) of the previous chunk
    for a, b in s.chunks(8, chunk_bytes):
        t = np.asarray(s.times[a:b])
        ep = s.episode_of(np.arange(a, b))
        if s.kind != EPOCH_NS:
            bad = ~np.isfinite(t)
            if bad.any():
                j = int(np.flatnonzero(bad)[0])
                e = int(ep[j])
                raise StoreError(f"times[{s.name!r}] episode {e} sample {a + j - s.offsets[e]} "
                                 f"is {t[j]}: times must be finite (drop the sample, or mask "
                                 f"it with valid[{s.name!r}] and give it a finite stamp)")
        wide = t.astype(np.int64 if s.kind in (EPOCH_NS, FRAMES) else np.float64)
        down = (np.diff(wide) < 0) & (ep[1:] == ep[:-1])
        if prev is not None and prev[0] == ep[0] and wide[0] < prev[1]:
            down = np.concatenate([[True], down])
            j = 0
        elif down.any():
            j = int(np.flatnonzero(down)[0]) + 1
        else:
            j = None
        if j is not None:
            e = int(ep[j])
            raise StoreError(f"times[{s.name!r}] episode {e} is not sorted: sample "
                             f"{a + j - s.offsets[e]} ({t[j]}) comes before the previous one; "
                             "sort each episode's samples by time")
        prev = (ep[-1], wide[-1])
        starts = s.offsets[:-1]
        here = (starts >= a) & (starts < b) & nonempty
        firsts[here] = wide[starts[here] - a]
        if s.kind == REL32:
            _record_ends(s, a, b, t, ends)
        elif s.kind == EPOCH_NS:
            _record_ends(s, a, b, wide, ns_ends)
    if s.kind == REL32:
        _check_float32_resolution(s, ends)
    elif s.kind == EPOCH_NS:
        _check_nanosecond_spacing(s, ns_ends)
    return firsts if s.kind in (EPOCH_S, EPOCH_NS) else None


def _check_nanosecond_spacing(s: _Stream, ends) -> None:
    """int64 stamps are nanoseconds: an episode of 3 or more samples whose stamps advance
    by less than 1 us per sample on average (faster than 1 MHz) holds frame numbers or
    another unit, which would pass silently as nanoseconds."""
    n = np.diff(s.offsets)
    span = ends[1] - ends[0]
    fast = (n >= 3) & (span > 0) & (span < _MIN_NS_SPACING * (n - 1))
    if fast.any():
        e = int(np.flatnonzero(fast)[0])
        raise StoreError(
            f"times[{s.name!r}] episode {e}: int64 stamps are nanoseconds, and its {n[e]} "
            f"samples span {span[e]} ns, a mean spacing below 1 us (faster than 1 MHz, the "
            "fastest rate supported). Frame numbers go in frames= with the stream's fps=; "
            "stamps in another unit must be converted to nanoseconds (or float64 seconds).")


def _check_float32_resolution(s: _Stream, ends) -> None:
    """float32 seconds are taken as episode-relative: epoch stamps passed as float32 (their
    samples already merged by the rounding) raise, by resample's resolution rule."""
    bad, n, mag, step = _unresolved(s, ends)
    if bad.size:
        e = int(bad[0])
        raise StoreError(
            f"times[{s.name!r}] episode {e}: float32 seconds of magnitude {mag:.6g} cannot "
            f"resolve its {n[e]} samples (float32 steps there are {step:.3g} s; episodes "
            f"{bad.tolist()[:8]} are affected). Epoch stamps must stay float64 seconds or int64 "
            "nanoseconds (the store makes them relative exactly); float32 times must be "
            "relative to the episode, and an episode this long at this rate needs "
            "jax_enable_x64 with float64 times.")


def _check_converted_resolution(s: _Stream, ends) -> None:
    """Epoch stamps made relative to their episode's origin, or fps clocks, in the store's
    time dtype: the same rule, so that a stream starting long after its episode's origin
    (or a long episode at a high rate) raises instead of merging samples."""
    bad, n, mag, step = _unresolved(s, ends)
    if bad.size:
        e = int(bad[0])
        dtype = np.dtype(ends.dtype).name
        raise StoreError(
            f"times[{s.name!r}] episode {e}: relative to the episode's origin its stamps reach "
            f"{mag:.6g} s, where {dtype} steps are {step:.3g} s, too coarse for its {n[e]} "
            f"samples (episodes {bad.tolist()[:8]} are affected). The origin is the earliest "
            "first stamp over the episode's streams (or origins=): check that the episode's "
            "streams start together, or enable jax_enable_x64 (float64 times).")


def _unresolved(s: _Stream, ends):
    """Episodes the resolution rule flags, from each one's first and last time (``ends``
    [2, E], the store's dtype); with the first one's magnitude and dtype step there."""
    n = np.diff(s.offsets).astype(np.int64)
    bad = np.flatnonzero(unresolved_spans(ends[0], ends[1], n))
    if not bad.size:
        return bad, n, 0.0, 0.0
    e = int(bad[0])
    mag = float(max(abs(ends[0, e]), abs(ends[1, e])))
    return bad, n, mag, float(np.spacing(ends.dtype.type(mag)))


def _record_ends(s: _Stream, a: int, b: int, t, ends) -> None:
    """Each episode's first and last time among rows [a, b) (``t``) into ``ends`` [2, E]."""
    nonempty = np.diff(s.offsets) > 0
    starts, stops = s.offsets[:-1], s.offsets[1:] - 1
    here = (starts >= a) & (starts < b) & nonempty
    there = (stops >= a) & (stops < b) & nonempty
    ends[0, here] = t[starts[here] - a]
    ends[1, there] = t[stops[there] - a]


def _origins(streams, E):
    """One origin per episode: the smallest first stamp over its non-empty timed streams."""
    timed = [s for s in streams if s.kind in (REL32, EPOCH_S, EPOCH_NS)]
    kinds = {s.kind for s in timed}
    if len(kinds) > 1:
        desc = ", ".join(f"{s.name!r}: {s.kind}" for s in timed)
        raise StoreError(f"streams mix time representations ({desc}); give every stream "
                         "float32 relative seconds, or every stream epoch stamps of one kind")
    kind = kinds.pop() if kinds else None
    if kind not in (EPOCH_S, EPOCH_NS):
        return kind, None
    big = np.inf if kind == EPOCH_S else np.iinfo(np.int64).max
    origin = np.full(E, big, np.float64 if kind == EPOCH_S else np.int64)
    for s in timed:
        nonempty = np.diff(s.offsets) > 0
        origin = np.where(nonempty, np.minimum(origin, s.firsts), origin)
    origin = np.where(origin == big, 0, origin).astype(origin.dtype)
    return kind, origin


def _given_origins(origins, kind, E):
    """``origins=``: one stamp per episode, in the units of the streams' epoch stamps."""
    if kind not in (EPOCH_S, EPOCH_NS):
        raise StoreError(f"origins= needs epoch stamps (float64 seconds or int64 nanoseconds); "
                         f"the streams' times are {kind or 'absent (fps)'}")
    dtype = np.float64 if kind == EPOCH_S else np.int64
    o = np.asarray(origins)
    if o.shape != (E,) or (kind == EPOCH_NS and not np.issubdtype(o.dtype, np.integer)):
        raise StoreError(f"origins must be [{E}] {np.dtype(dtype).name} (one per episode, the "
                         f"times' units), got {o.dtype.name} {tuple(o.shape)}")
    if kind == EPOCH_S and not np.isfinite(o).all():
        raise StoreError("origins must be finite")
    return o.astype(dtype)


@functools.partial(jax.jit, donate_argnums=0)
def _write(buf, chunk, start):
    return jax.lax.dynamic_update_slice_in_dim(buf, chunk, start, 0)


def _upload(read, N, row_shape, dtype, device, chunk_bytes):
    """A device array [N, *row_shape] filled from ``read(a, b)`` host chunks."""
    row_bytes = int(np.prod(row_shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    rows = max(1, chunk_bytes // max(row_bytes, 1))
    if N <= rows:
        return jax.device_put(np.ascontiguousarray(read(0, N), dtype), device)
    buf = jnp.zeros((N,) + tuple(row_shape), dtype, device=device)
    with warnings.catch_warnings():  # backends that cannot donate copy instead: still correct
        warnings.filterwarnings("ignore", message=".*donated buffers were not usable.*")
        for a in range(0, N, rows):
            b = min(a + rows, N)
            chunk = jax.device_put(np.ascontiguousarray(read(a, b), dtype), device)
            buf = _write(buf, chunk, np.int32(a))
    return buf


#: float64 values rounded to float32 warn when the rounding reaches this share of a
#: feature's range (epoch stamps or GPS degrees as values: steps of 128 s or 0.4 m).
_ROUNDING_WARN_SHARE = 1e-4


class _RoundingWatch:
    """Reads float64 value chunks for a float32 store and returns them cast (one cast),
    keeping per feature the range of the values, to warn after the upload when float32's
    spacing at their magnitude is a large share of that range."""

    def __init__(self, read, D):
        self.read = read
        self.lo, self.hi = np.full(D, np.inf), np.full(D, -np.inf)

    def __call__(self, a, b):
        x = np.asarray(self.read(a, b))
        if x.size:
            lo, hi = x.min(0), x.max(0)
            if not (np.isfinite(lo).all() and np.isfinite(hi).all()):  # rare: NaN, inf
                fin = np.where(np.isfinite(x), x, np.nan)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    lo, hi = np.nanmin(fin, 0), np.nanmax(fin, 0)
            self.lo = np.fmin(self.lo, lo)
            self.hi = np.fmax(self.hi, hi)
        return x.astype(np.float32)

    def warn(self, name: str) -> None:
        ok = self.hi >= self.lo
        span = np.where(ok, self.hi - self.lo, 0.0)
        mag = np.where(ok, np.maximum(np.abs(self.lo), np.abs(self.hi)), 0.0)
        with np.errstate(over="ignore"):
            err = np.spacing(mag.astype(np.float32)).astype(np.float64) / 2  # worst rounding
        bad = np.flatnonzero((span > 0) & (err > _ROUNDING_WARN_SHARE * span))
        big = np.flatnonzero(mag > np.finfo(np.float32).max)
        if big.size:
            warnings.warn(f"stream {name!r}: float64 values beyond float32's range in "
                          f"features {big.tolist()} become infinite; enable jax_enable_x64 "
                          "or rescale them before building the store.", stacklevel=4)
        elif bad.size:
            d = int(bad[np.argmax(err[bad] / span[bad])])
            warnings.warn(f"stream {name!r}: float64 values rounded to float32 lose up to "
                          f"{err[d]:.3g} in feature {d} (its values span {span[d]:.3g}); "
                          f"features {bad.tolist()} are affected. Enable jax_enable_x64, or "
                          "subtract an offset (or normalise) before building the store.",
                          stacklevel=4)


def _relative_reader(s: _Stream, origin, tdtype, span, ends):
    """Rows [a, b) of the stream's times as the store holds them; records the largest
    magnitude (``span``) and, unless ``ends`` is None, each episode's first and last time."""
    def read(a, b):
        if s.times is None:
            rows = np.arange(a, b)
            rel = (rows - s.offsets[s.episode_of(rows)]) / s.fps
        elif s.kind == FRAMES:
            rel = np.asarray(s.times[a:b]).astype(np.float64) / s.fps
        elif s.kind == REL32:
            rel = np.asarray(s.times[a:b]).astype(np.float64)
        else:
            t = np.asarray(s.times[a:b])
            o = origin[s.episode_of(np.arange(a, b))] if origin is not None else 0
            if s.kind == EPOCH_NS:
                rel = integer_seconds(t.astype(np.int64) - o)
            else:
                rel = t.astype(np.float64) - o
        if rel.size:
            span[0] = max(span[0], float(np.abs(rel).max()))
        out = rel.astype(tdtype)
        if ends is not None:
            _record_ends(s, a, b, out, ends)
        return out
    return read


def build(cls, ragged_cls, meta_cls, values, offsets, times, *, fps, valid, device,
          chunk_bytes: int, origins=None, frames=None):
    frames = frames if frames is not None else {}
    names = _names(values, times, valid, frames)
    if not isinstance(chunk_bytes, int) or chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be a positive int, got {chunk_bytes!r}")
    if isinstance(offsets, Mapping):
        missing = sorted(set(names) - set(offsets))
        if missing:
            raise StoreError(f"offsets is a mapping but has no entry for streams {missing}")
        per_stream = {n: offsets[n] for n in names}
    else:
        per_stream = {n: offsets for n in names}
    rates = fps if isinstance(fps, Mapping) else {n: fps for n in names}
    streams = [_Stream(n, values[n], per_stream[n], times.get(n), rates.get(n), valid.get(n),
                       frames.get(n)) for n in names]
    counts = {s.name: s.offsets.shape[0] - 1 for s in streams}
    if len(set(counts.values())) > 1:
        raise StoreError(f"every stream needs the same number of episodes; offsets give "
                         f"{counts}")
    E = next(iter(counts.values()))
    for s in streams:
        s.firsts = _scan_times(s, chunk_bytes) if s.times is not None else None
    kind, earliest = _origins(streams, E)
    origins = earliest if origins is None else _given_origins(origins, kind, E)

    device = device if device is not None else next(iter(jnp.zeros(()).devices()))
    tdtype = time_dtype()
    total = sum(s.N * (s.D * s.dtype.itemsize + np.dtype(tdtype).itemsize
                       + (1 if s.valid is not None else 0)) + 4 * (E + 1) for s in streams)
    fits(total, device)

    ragged = {}
    for s in streams:
        span = [0.0]
        read = lambda a, b, s=s: np.asarray(s.values[a:b]).reshape(b - a, s.D)  # noqa: E731
        watch = None
        if np.dtype(s.values.dtype) == np.float64 and s.dtype == np.float32:
            read = watch = _RoundingWatch(read, s.D)
        vals = _upload(read, s.N, (s.D,), s.dtype, device, chunk_bytes)
        if watch is not None:
            watch.warn(s.name)
        # float32 input was checked as given (pass 1); converted times are checked as stored
        ends = None if s.kind == REL32 else np.zeros((2, E), tdtype)
        t = _upload(_relative_reader(s, origins, tdtype, span, ends), s.N, (), tdtype, device,
                    chunk_bytes)
        if ends is not None:
            _check_converted_resolution(s, ends)
        mask = None if s.valid is None else _upload(
            lambda a, b, s=s: np.asarray(s.valid[a:b]), s.N, (), np.bool_, device, chunk_bytes)
        offs = jax.device_put(s.offsets.astype(np.int32), device)
        if np.dtype(tdtype) == np.float32 and span[0] > _FLOAT32_SAFE_SPAN_S:
            warnings.warn(f"stream {s.name!r}: relative times reach {span[0]:.0f} s; float32 "
                          f"resolves them only to {np.spacing(np.float32(span[0])):.2g} s. "
                          "Enable jax_enable_x64 for long episodes.", stacklevel=3)
        ragged[s.name] = ragged_cls(vals, t, offs, mask, s.max_length)
    unit = {EPOCH_S: "s", EPOCH_NS: "ns"}.get(kind)
    return cls(ragged, E, meta_cls(origins, unit))


__all__ = ["build"]
