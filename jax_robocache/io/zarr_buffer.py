"""zarr replay buffers (diffusion_policy's ``ReplayBuffer``, UMI) -> ``DatasetSource`` (zarr).

Install with ``pip install 'jax_robocache[zarr]'``. Layout (diffusion_policy
``common/replay_buffer.py``): a group with ``data/<key>`` arrays ``[N, ...]`` (all
episodes one after another, the same N for every key) and ``meta/episode_ends``
``[E]`` int64 (exclusive end row of each episode). Directory stores (``.zarr``),
zip stores (``.zarr.zip``, as UMI writes) and zarr format 2 or 3 are read.

Mapping: every ``data/<key>`` is a stream (rows flattened to ``[N, D]``); the clock is
``data/<clock>`` if that array exists (``clock="timestamp"``: diffusion_policy's real
robot buffers store float64 epoch seconds there; the store makes them episode-relative
exactly), otherwise the rate ``fps`` you pass.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .diagnostics import DEFAULT_INVALID, Diagnostics, check_timestamps
from .errors import DatasetError, LayoutError, install_hint, missing_keys_error
from .lazy import RowRuns, Rows2D
from .source import DatasetSource, StreamSource


def _zarr():
    try:
        import zarr
    except ImportError as err:
        raise ImportError(f"{install_hint('zarr', 'zarr')} ({err})") from err
    return zarr


def read_zarr(path, *, keys: Sequence[str] | None = None,
              episodes: Sequence[int] | None = None, fps: float | None = None,
              clock: str | None = "timestamp", tolerance_s: float = 1e-4,
              invalid: Iterable[str] = DEFAULT_INVALID) -> DatasetSource:
    """Describes a zarr replay buffer for ``to_store()``.

    Args:
      path: the ``.zarr`` directory or ``.zarr.zip`` file.
      keys: ``data/`` arrays to read as streams (default: all except the clock).
      episodes: episode numbers (0-based, in ``meta/episode_ends`` order) to read, in
        this order (default: all).
      fps: the recording rate, required when the buffer has no ``data/<clock>``; with a
        clock, it is the nominal rate of the diagnostics (gaps, jitter).
      clock: the ``data/`` array holding per-sample timestamps (float seconds or int64
        nanoseconds); None to ignore it and use ``fps``.
      tolerance_s, invalid: timestamp diagnostics (``jax_robocache.io.diagnostics``).

    Raises:
      FileNotFoundError: no such path. LayoutError: no ``data`` group or no
      ``meta/episode_ends``. KeyError: a missing key or episode (lists what there is).
      DatasetError: unreadable metadata, ``episode_ends`` not ascending or not matching
      an array's length (the array is named); a chunk that cannot be decoded raises
      naming its array when ``to_store()`` reads it.
    """
    zarr = _zarr()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"zarr replay buffer {path} does not exist")
    store, closer = path, None
    try:
        if path.is_file():
            store = zarr.storage.ZipStore(path, mode="r")
            closer = store.close
        root = zarr.open_group(store=store, mode="r")
    except Exception as err:  # noqa: BLE001 - zarr raises several types for bad metadata
        if closer:
            _close_quietly(closer)  # a zip store that failed to open cannot close either
        raise DatasetError(f"{path} is not a readable zarr group (corrupt metadata?): "
                           f"{type(err).__name__}: {err}") from err
    try:
        return _describe(path, root, keys, episodes, fps, clock, tolerance_s, invalid, closer)
    except BaseException:
        if closer:
            closer()
        raise


def _close_quietly(closer) -> None:
    with contextlib.suppress(Exception):  # the open error is the one to report
        closer()


def _member(group, name: str, path: Path):
    try:
        return group[name]
    except KeyError:
        return None
    except Exception as err:  # noqa: BLE001
        raise DatasetError(f"{path}/{name}: unreadable zarr metadata (corrupt, or a codec that "
                           f"is not installed, such as imagecodecs for UMI's images; pass keys= "
                           f"without it to skip it): {type(err).__name__}: {err}") from err


def _array_names(data, path: Path) -> list[str]:
    """The names of ``data/``'s arrays. zarr 3 parses every array's metadata to list them,
    so one array it cannot open (a codec not installed, corrupt metadata) would stop the
    whole read, even of other keys: then the names come from the store's listing and
    only an array that is asked for raises (``_member``)."""
    try:
        return sorted(data.array_keys())
    except Exception as err:  # noqa: BLE001
        names = _listed_arrays(path)
        if names is None:
            raise DatasetError(f"{path}/data: cannot list its arrays (corrupt metadata?): "
                               f"{type(err).__name__}: {err}") from err
        return names


def _listed_arrays(path: Path) -> list[str] | None:
    """Array names under ``data/`` from the files of a directory or zip store (format 2:
    ``.zarray``; format 3: ``zarr.json``), or None if they cannot be listed."""
    import zipfile

    try:
        if path.is_dir():
            files = [str(p.relative_to(path)) for p in (path / "data").glob("*/*")]
        else:
            with zipfile.ZipFile(path) as z:
                files = z.namelist()
    except (OSError, zipfile.BadZipFile):
        return None
    names = set()
    for f in files:
        parts = Path(f).parts
        if len(parts) == 3 and parts[0] == "data" and parts[2] in (".zarray", "zarr.json"):
            names.add(parts[1])
    return sorted(names)


def _describe(path, root, keys, episodes, fps, clock, tolerance_s, invalid, closer):
    data = _member(root, "data", path)
    ends_arr = _member(root, "meta/episode_ends", path)
    if data is None or ends_arr is None or not hasattr(data, "array_keys"):
        raise LayoutError(f"{path} is not a replay buffer: it needs a 'data' group and "
                          f"'meta/episode_ends' (diffusion_policy's ReplayBuffer layout); it "
                          f"has {sorted(root.keys())}")
    try:
        ends = np.asarray(ends_arr[:]).astype(np.int64)
    except Exception as err:  # noqa: BLE001
        raise DatasetError(f"{path}/meta/episode_ends is unreadable (corrupt?): {err}") from err
    if ends.ndim != 1 or np.any(np.diff(ends) < 0) or (ends.size and ends[0] < 0):
        raise DatasetError(f"{path}/meta/episode_ends must be ascending row counts [E]; got "
                           f"shape {ends.shape}, first values {ends[:5].tolist()}")
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    names = _array_names(data, path)
    has_clock = clock is not None and clock in names
    if keys is None:
        keys = [k for k in names if not (has_clock and k == clock)]
    else:
        keys = list(dict.fromkeys(keys))
        missing = [k for k in keys if k not in names]
        if missing:
            raise missing_keys_error("keys", missing, names, f"{path}/data")
    if not has_clock and fps is None:
        raise ValueError(f"{path}/data has no {clock!r} array: pass fps= (the rate the buffer "
                         "was recorded at) or clock= (the array holding timestamps)")
    E = len(ends)
    if E == 0:
        raise DatasetError(f"{path}/meta/episode_ends is empty: the buffer holds no episode")
    if episodes is None:
        sel = np.arange(E)
    else:
        sel = np.asarray([int(e) for e in episodes], np.int64)
        if sel.size == 0:
            raise ValueError("episodes selects no episode; pass None for all")
        if len(set(sel.tolist())) != sel.size:
            raise ValueError(f"episodes lists an episode twice: {sel.tolist()}")
        bad = sel[(sel < 0) | (sel >= E)]
        if bad.size:
            raise KeyError(f"episodes {bad.tolist()} are not in {path}: it has {E} episodes "
                           f"(0..{E - 1})")
    run_starts, run_stops = starts[sel], ends[sel]
    offsets = np.concatenate([[0], np.cumsum(run_stops - run_starts)]).astype(np.int64)
    total = int(ends[-1]) if E else 0

    def rows(key):
        arr = _member(data, key, path / "data")
        if not hasattr(arr, "shape") or arr.ndim < 1:
            raise DatasetError(f"{path}/data/{key} is not an array with a sample axis")
        if arr.shape[0] != total:
            raise DatasetError(f"{path}/data/{key} has {arr.shape[0]} rows but "
                               f"meta/episode_ends ends at {total}")
        return arr, Rows2D(arr, name=f"{path}/data/{key}")

    times = valid = None
    diagnostics = None
    if has_clock:
        arr, flat = rows(clock)
        if flat.shape[1] != 1:
            raise DatasetError(f"{path}/data/{clock} must hold one stamp per row, got shape "
                               f"{arr.shape}")
        times = np.asarray(RowRuns(flat, run_starts, run_stops)[:])[:, 0]
        scale = 1e-9 if times.dtype.kind in "iu" else 1.0
        valid, reports = check_timestamps(times, offsets, period=None if fps is None else
                                          1.0 / fps, tolerance=tolerance_s, invalid=invalid,
                                          clock=clock, episodes=sel, scale=scale)
        diagnostics = Diagnostics(tuple(reports))
        valid = None if valid.all() else valid
    streams = {}
    for key in keys:
        arr, flat = rows(key)
        streams[key] = StreamSource(
            name=key, values=RowRuns(flat, run_starts, run_stops, name=key),
            shape=tuple(int(s) for s in arr.shape[1:]), offsets=offsets, times=times,
            valid=valid, info={"chunks": tuple(getattr(arr, "chunks", ()) or ()),
                               "attrs": dict(getattr(arr, "attrs", {}) or {})})
    return DatasetSource(path=str(path), format="zarr replay buffer", episodes=sel,
                         streams=streams, fps=None if fps is None else float(fps),
                         diagnostics=diagnostics,
                         metadata={"attrs": dict(root.attrs), "episode_ends": ends},
                         closer=closer)
