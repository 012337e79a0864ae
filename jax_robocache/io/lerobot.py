"""LeRobotDataset (v3.0 and v2.x) -> ``DatasetSource``, through ``pyarrow`` only (no torch,
``datasets`` or ``lerobot``). Install with ``pip install 'jax_robocache[lerobot]'``.

Layouts read (LeRobot's own paths, from ``meta/info.json``'s ``data_path`` / ``video_path``):

* v3.0: ``meta/info.json``, ``meta/stats.json``, ``meta/tasks.parquet``,
  ``meta/episodes/chunk-XXX/file-YYY.parquet`` (one row per episode: ``episode_index``,
  ``length``, ``data/chunk_index``, ``data/file_index``, ``videos/<key>/chunk_index``,
  ``videos/<key>/file_index``, ``videos/<key>/from_timestamp``, ``stats/<feature>/<stat>``),
  ``data/chunk-XXX/file-YYY.parquet`` (many episodes per file),
  ``videos/<key>/chunk-XXX/file-YYY.mp4`` (many episodes per file, one after another).
* v2.1 / v2.0: ``meta/info.json``, ``meta/episodes.jsonl``, ``meta/tasks.jsonl``,
  ``meta/stats.json`` and/or ``meta/episodes_stats.jsonl``,
  ``data/chunk-XXX/episode_NNNNNN.parquet``,
  ``videos/chunk-XXX/<key>/episode_NNNNNN.mp4`` (chunk = episode_index // chunks_size).

Mapping: every numeric feature except the bookkeeping columns (``timestamp``,
``frame_index``, ``episode_index``, ``index``) is a stream (``task_index`` included);
``timestamp`` is every stream's clock (episode-relative float32 seconds, as stored)
and ``info.json``'s ``fps`` the dataset's rate. ``video`` and ``image`` features are not
decoded: each becomes a ``FrameIndex`` (per frame: file, frame number, seconds into
the file, timestamp). ``meta/stats.json`` is read as ``stats``. Details and the
diagnostics: ``docs/io.md``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ._parquet import (_OPEN, ParquetColumn, file_signature, leaf_dtype, open_parquet,
                       read_columns, to_numpy)
from .diagnostics import DEFAULT_INVALID, Diagnostics, check_timestamps
from .errors import DatasetError, LayoutError, missing_keys_error
from .lazy import Concatenated, RowRuns
from .source import DatasetSource, FrameIndex, StreamSource

VERSIONS = ("v2.0", "v2.1", "v3.0")
BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index")
VISUAL = ("video", "image")
DEFAULT_TOLERANCE_S = 1e-4  # LeRobotDataset's default tolerance_s


def read_lerobot(root, *, keys: Sequence[str] | None = None,
                 episodes: Sequence[int] | None = None,
                 tolerance_s: float = DEFAULT_TOLERANCE_S,
                 invalid: Iterable[str] = DEFAULT_INVALID,
                 episode_stats: bool = False) -> DatasetSource:
    """Describes a local LeRobotDataset (v3.0, v2.1 or v2.0) for ``to_store()``.

    Args:
      root: the dataset's directory (the one holding ``meta/`` and ``data/``).
      keys: features to read (streams, and video/image features as frame indices);
        default: every numeric non-bookkeeping feature and every video/image feature.
        A bookkeeping column (``frame_index``, ``index``, ...) is read only if named.
      episodes: ``episode_index`` values to read, in this order (default: all, by
        ascending ``episode_index``, as LeRobot orders them).
      tolerance_s: the timestamp tolerance (LeRobot's ``tolerance_s``) of the diagnostics.
      invalid: the irregularities that make a sample invalid in the masks
        (``jax_robocache.io.diagnostics``).
      episode_stats: also read the per-episode statistics into
        ``metadata["episode_stats"]`` (episode_index -> feature -> stat -> array).

    Returns:
      ``DatasetSource`` (format ``"lerobot v3.0"`` / ``"lerobot v2.1"`` ...). Values stay
      in the Parquet files until ``to_store()``; timestamps, masks and indices are read now.

    Raises:
      FileNotFoundError: no such directory.
      LayoutError: not a LeRobot dataset, or a version other than ``VERSIONS``.
      KeyError: a key or an episode the dataset does not have (lists what it has).
      DatasetError: a missing or corrupt file (named), rows that disagree with the
        episode table or with ``info.json``'s shapes. Timestamp irregularities never raise:
        see ``diagnostics`` and the streams' ``valid``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"LeRobot dataset directory {root} does not exist")
    info = _load_json(root / "meta" / "info.json", "LeRobot's meta/info.json")
    version = str(info.get("codebase_version", ""))
    if version not in VERSIONS:
        raise LayoutError(f"{root / 'meta' / 'info.json'}: codebase_version {version!r}; this "
                          f"reader knows {VERSIONS} (convert older datasets with LeRobot's "
                          "conversion scripts)")
    for field in ("fps", "features", "data_path"):
        if field not in info:
            raise LayoutError(f"{root / 'meta' / 'info.json'} has no {field!r}")
    fps = float(info["fps"])
    features = info["features"]
    streams, visual = _choose_keys(features, keys, root)
    table = _episode_table_v3(root, info, visual) if version == "v3.0" else _episode_table_v2(
        root, info)
    rows = _select_episodes(table, episodes, root)

    located = _locate_rows(root, table, rows, streams, features, visual)
    offsets = np.concatenate([[0], np.cumsum([table["length"][r] for r in rows])]).astype(
        np.int64)
    times = located["times"]
    ep_ids = table["episode_index"][rows].astype(np.int64)
    valid, reports = check_timestamps(times, offsets, period=1.0 / fps, tolerance=tolerance_s,
                                      invalid=invalid, clock="timestamp", episodes=ep_ids)
    all_valid = bool(valid.all())

    files = located["files"]
    out_streams = {}
    for key in streams:
        ft = features[key]
        shape = tuple(int(s) for s in ft["shape"])
        parts = [ParquetColumn(f, key, shape, located["dtypes"][key], located["row_groups"][f],
                               located["signatures"][f]) for f in files]
        values = RowRuns(Concatenated(parts, name=key), located["run_starts"],
                         located["run_stops"], name=key)
        out_streams[key] = StreamSource(
            name=key, values=values, shape=shape, offsets=offsets, times=times,
            valid=None if all_valid else valid, names=ft.get("names"),
            info={"dtype": ft.get("dtype")})

    frames = {key: _frame_index(root, info, table, rows, key, located, offsets, fps, version)
              for key in visual}
    metadata = {"info": info, "tasks": _tasks(root, version)}
    if episode_stats:
        metadata["episode_stats"] = _episode_stats(root, table, rows, version)
    return DatasetSource(
        path=str(root), format=f"lerobot {version}", episodes=ep_ids, streams=out_streams,
        fps=fps, frames=frames, stats=_stats(root, version),
        diagnostics=Diagnostics(tuple(reports)),
        metadata=metadata, closer=functools.partial(_OPEN.release, files))


# --- metadata -----------------------------------------------------------------------------------

def _load_json(path: Path, what: str, required: bool = True):
    if not path.is_file():
        if not required:
            return None
        raise LayoutError(f"{path} is missing: not a LeRobot dataset ({what} not found)")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path} is not readable JSON (corrupt?): {err}") from err


def _load_jsonl(path: Path) -> list[dict]:
    out = []
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        out.append(json.loads(line))
                    except ValueError as err:
                        raise DatasetError(f"{path} line {n} is not JSON (corrupt?): {err}") \
                            from err
    except OSError as err:
        raise DatasetError(f"{path}: {err}") from err
    return out


def _choose_keys(features: dict, keys, root: Path) -> tuple[list[str], list[str]]:
    numeric = [k for k, ft in features.items() if ft.get("dtype") not in VISUAL + ("string",)]
    visual = [k for k, ft in features.items() if ft.get("dtype") in VISUAL]
    if keys is None:
        return [k for k in numeric if k not in BOOKKEEPING], visual
    keys = list(dict.fromkeys(keys))
    missing = [k for k in keys if k not in features]
    if missing:
        raise missing_keys_error("keys", missing, features, f"LeRobot dataset {root}")
    if "timestamp" in keys:
        raise ValueError("'timestamp' is every stream's clock (StreamSource.times), not a "
                         "stream; leave it out of keys")
    text = [k for k in keys if k not in numeric and k not in visual]
    if text:
        raise ValueError(f"features {text} of {root} hold text (dtype 'string'), not numbers")
    return [k for k in keys if k in numeric], [k for k in keys if k in visual]


def _episode_table_v3(root: Path, info: dict, visual: list[str]) -> dict:
    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not files:
        raise LayoutError(f"{root / 'meta' / 'episodes'} holds no chunk-*/file-*.parquet: not a "
                          "complete LeRobot v3.0 dataset")
    base = ["episode_index", "length", "data/chunk_index", "data/file_index"]
    video_cols = [f"videos/{k}/{c}" for k in visual if info["features"][k]["dtype"] == "video"
                  for c in ("chunk_index", "file_index", "from_timestamp")]
    cols: dict[str, list] = {c: [] for c in base + video_cols}
    for f in files:
        t = read_columns(f, base + video_cols)
        for c in cols:
            cols[c].append(t.column(c).to_numpy())
    table = {c: np.concatenate(v) for c, v in cols.items()}
    table["meta_files"] = files
    table["data_file"] = np.array([
        str(root / info["data_path"].format(chunk_index=int(c), file_index=int(i)))
        for c, i in zip(table["data/chunk_index"], table["data/file_index"])], dtype=object)
    return _check_table(table, files[0].parent.parent)


def _episode_table_v2(root: Path, info: dict) -> dict:
    path = root / "meta" / "episodes.jsonl"
    if not path.is_file():
        raise LayoutError(f"{path} is missing: not a complete LeRobot v2 dataset")
    lines = _load_jsonl(path)
    try:
        ep = np.array([int(d["episode_index"]) for d in lines], np.int64)
        length = np.array([int(d["length"]) for d in lines], np.int64)
    except (KeyError, TypeError, ValueError) as err:
        raise DatasetError(f"{path}: every line needs integer 'episode_index' and 'length' "
                           f"({err})") from err
    chunks = int(info.get("chunks_size", 1000))
    data_file = np.array([str(root / info["data_path"].format(
        episode_chunk=int(e) // chunks, episode_index=int(e))) for e in ep], dtype=object)
    return _check_table({"episode_index": ep, "length": length, "data_file": data_file}, path)


def _check_table(table: dict, where) -> dict:
    ep = table["episode_index"]
    uniq, counts = np.unique(ep, return_counts=True)
    if np.any(counts > 1):
        raise DatasetError(f"{where}: episode_index {uniq[counts > 1].tolist()} listed twice")
    if np.any(table["length"] < 0):
        raise DatasetError(f"{where}: negative episode length")
    return table


def _select_episodes(table: dict, episodes, root: Path) -> np.ndarray:
    ep = table["episode_index"]
    if episodes is None:  # ascending episode_index, as LeRobot orders them
        return np.argsort(ep, kind="stable").astype(np.int64)
    wanted = [int(e) for e in episodes]
    if not wanted:
        raise ValueError("episodes selects no episode; pass None for all")
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"episodes lists an episode twice: {wanted}")
    where = {int(e): k for k, e in enumerate(ep)}
    missing = [e for e in wanted if e not in where]
    if missing:
        raise KeyError(f"episodes {missing} are not in LeRobot dataset {root}; it has "
                       f"{len(ep)} episodes ({_ranges(ep)})")
    return np.array([where[e] for e in wanted], np.int64)


def _ranges(ids) -> str:
    ids = np.sort(np.asarray(ids))
    if ids.size == 0:
        return "none"
    if ids[-1] - ids[0] + 1 == ids.size:
        return f"episode_index {int(ids[0])}..{int(ids[-1])}"
    return f"episode_index {ids[:10].tolist()}{' ...' if ids.size > 10 else ''}"


# --- data files -----------------------------------------------------------------------------

def _locate_rows(root, table, rows, streams, features, visual) -> dict:
    """Opens each data file once: checks its columns, reads ``episode_index`` and
    ``timestamp``, finds each selected episode's rows. Returns the row runs (in the
    concatenation of the files), the clock, dtypes and row groups."""
    files: list[str] = []
    file_of: dict[str, int] = {}
    for r in rows:
        f = table["data_file"][r]
        if f not in file_of:
            file_of[f] = len(files)
            files.append(f)
    needed = ["episode_index", "timestamp"] + list(streams)
    images = [k for k in visual if features[k]["dtype"] == "image"]
    dtypes: dict[str, np.dtype] = {}
    row_groups, signatures, file_base, per_file = {}, {}, [], {}
    total = 0
    for f in files:
        path = Path(f)
        pf = open_parquet(path)
        signatures[path] = file_signature(path)  # the file the plan below is made for
        try:
            schema = pf.schema_arrow
            absent = [c for c in needed + images if c not in schema.names]
            if absent:
                raise DatasetError(f"{path} has no column(s) {absent} although info.json lists "
                                   f"them; columns: {schema.names}")
            for k in streams:
                try:
                    dt = leaf_dtype(schema.field(k).type)
                except TypeError as err:
                    raise DatasetError(f"{path} column {k!r}: {err}") from None
                if dtypes.setdefault(k, dt) != dt:
                    raise DatasetError(f"{path} column {k!r} is {dt}, other files hold "
                                       f"{dtypes[k]}")
            t = read_columns(path, ["episode_index", "timestamp"], parquet_file=pf)
            meta = pf.metadata
            row_groups[f] = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        finally:
            pf.close()
        ep_col = to_numpy(t.column("episode_index"), 1, f"{path} column 'episode_index'")[:, 0]
        ts_col = to_numpy(t.column("timestamp"), 1, f"{path} column 'timestamp'")[:, 0]
        if ts_col.dtype.kind != "f":
            raise DatasetError(f"{path} column 'timestamp' is {ts_col.dtype}; LeRobot stores "
                               "float seconds")
        per_file[f] = (_rows_by_episode(ep_col), ts_col)
        file_base.append(total)
        total += len(ep_col)
    run_starts, run_stops, times, file_rows = [], [], [], []
    for r in rows:
        f = table["data_file"][r]
        e, n = int(table["episode_index"][r]), int(table["length"][r])
        by_ep, ts_col = per_file[f]
        where = by_ep.get(e, np.zeros(0, np.int64))
        if where.size != n:
            raise DatasetError(f"{f} holds {where.size} rows of episode {e}, the episode table "
                               f"says {n}")
        breaks = np.flatnonzero(np.diff(where) != 1) + 1
        starts = where[np.concatenate([[0], breaks])] if n else where[:0]
        stops = where[np.concatenate([breaks - 1, [n - 1]])] + 1 if n else where[:0]
        base = file_base[file_of[f]]
        run_starts.append(starts + base)
        run_stops.append(stops + base)
        times.append(ts_col[where])
        file_rows.append(where)  # rows inside the file (image features point there)
    ts_dtype = times[0].dtype if times else np.float32
    return dict(files=[Path(f) for f in files], file_index=file_of, dtypes=dtypes,
                row_groups={Path(f): g for f, g in row_groups.items()}, signatures=signatures,
                run_starts=np.concatenate(run_starts) if run_starts else np.zeros(0, np.int64),
                run_stops=np.concatenate(run_stops) if run_stops else np.zeros(0, np.int64),
                times=np.concatenate(times) if times else np.zeros(0, ts_dtype),
                file_rows=file_rows)


def _rows_by_episode(ep_col: np.ndarray) -> dict[int, np.ndarray]:
    """episode_index -> its rows in the file (ascending), in one sort."""
    order = np.argsort(ep_col, kind="stable")
    ids, starts = np.unique(ep_col[order], return_index=True)
    return {int(e): rows for e, rows in zip(ids, np.split(order, starts[1:]))}


def _frame_index(root, info, table, rows, key, located, offsets, fps, version) -> FrameIndex:
    ft = info["features"][key]
    times = located["times"]
    lengths = np.diff(offsets)
    if ft["dtype"] == "image":
        files = tuple(str(f) for f in located["files"])
        file = np.repeat([located["file_index"][table["data_file"][r]] for r in rows],
                         lengths).astype(np.int32)
        frame = (np.concatenate(located["file_rows"]) if rows.size else np.zeros(0)).astype(
            np.int64)
        return FrameIndex(name=key, kind="image", files=files, file=file, frame=frame,
                          file_time=times.astype(np.float64), times=times, offsets=offsets,
                          info=dict(ft.get("info") or {}))
    vinfo = dict(ft.get("info") or {})
    vfps = float(vinfo.get("video.fps", fps))
    vpath = info.get("video_path")
    if not vpath:
        raise LayoutError(f"{root / 'meta' / 'info.json'}: feature {key!r} is a video but "
                          "video_path is not set")
    paths, shift = [], []
    for r in rows:
        e = int(table["episode_index"][r])
        if version == "v3.0":
            paths.append(str(root / vpath.format(
                video_key=key, chunk_index=int(table[f"videos/{key}/chunk_index"][r]),
                file_index=int(table[f"videos/{key}/file_index"][r]))))
            shift.append(float(table[f"videos/{key}/from_timestamp"][r]))
        else:
            chunks = int(info.get("chunks_size", 1000))
            paths.append(str(root / vpath.format(episode_chunk=e // chunks, video_key=key,
                                                 episode_index=e)))
            shift.append(0.0)
    files = tuple(dict.fromkeys(paths))
    pos = {p: k for k, p in enumerate(files)}
    file = np.repeat([pos[p] for p in paths], lengths).astype(np.int32)
    file_time = times.astype(np.float64) + np.repeat(np.asarray(shift, np.float64), lengths)
    known = np.isfinite(file_time)  # a NaN stamp (marked invalid) has no frame: -1
    frame = np.where(known, np.rint(np.where(known, file_time, 0.0) * vfps), -1).astype(np.int64)
    return FrameIndex(name=key, kind="video", files=files, file=file, frame=frame,
                      file_time=file_time, times=times, offsets=offsets,
                      info={**vinfo, "fps": vfps})


# --- statistics and tasks ----------------------------------------------------------------------

def _as_arrays(tree):
    if isinstance(tree, dict):
        return {k: _as_arrays(v) for k, v in tree.items()}
    return np.asarray(tree)


def _stats(root: Path, version: str):
    """The dataset's stats as LeRobot itself loads them: v3.0 and v2.0 ``meta/stats.json``;
    v2.1 the per-episode stats of ``meta/episodes_stats.jsonl`` combined as LeRobot's
    ``aggregate_stats`` does (count-weighted mean, pooled variance, min of mins, max of
    maxes; a ``stats.json`` beside it is ignored, as LeRobot does), or ``stats.json`` when
    that file is absent."""
    path = root / "meta" / "episodes_stats.jsonl"
    if version == "v2.1" and path.is_file():
        per_feature: dict[str, list] = {}
        for d in _load_jsonl(path):
            for feat, st in _as_arrays(d.get("stats", {})).items():
                per_feature.setdefault(feat, []).append(st)
        return {feat: _aggregate(feat, sts, path) for feat, sts in per_feature.items()}
    stats = _load_json(root / "meta" / "stats.json", "stats", required=False)
    return None if stats is None else _as_arrays(stats)


def _aggregate(feat: str, sts: list[dict], path: Path) -> dict[str, np.ndarray]:
    try:
        means = np.stack([s["mean"] for s in sts]).astype(np.float64)
        variances = np.stack([s["std"] for s in sts]).astype(np.float64) ** 2
        counts = np.stack([s["count"] for s in sts])  # integers, as LeRobot keeps them
        mins = np.stack([s["min"] for s in sts])
        maxs = np.stack([s["max"] for s in sts])
    except (KeyError, ValueError) as err:
        raise DatasetError(f"{path}: stats of {feat!r} need mean, std, min, max and count of "
                           f"one shape in every episode ({err})") from err
    total = counts.sum(axis=0)
    while counts.ndim < means.ndim:
        counts = counts[..., None]
    mean = (means * counts).sum(axis=0) / total
    var = ((variances + (means - mean) ** 2) * counts).sum(axis=0) / total
    return {"min": mins.min(axis=0), "max": maxs.max(axis=0), "mean": mean,
            "std": np.sqrt(var), "count": total}


def _episode_stats(root: Path, table: dict, rows, version: str) -> dict:
    wanted = {int(table["episode_index"][r]) for r in rows}
    out: dict[int, dict] = {}
    if version == "v3.0":
        for f in table["meta_files"]:
            pf = open_parquet(f)
            cols = [c for c in pf.schema_arrow.names if c.startswith("stats/")]
            t = read_columns(f, ["episode_index"] + cols, parquet_file=pf)
            ep = t.column("episode_index").to_numpy()
            for i, e in enumerate(ep):
                if int(e) in wanted:
                    tree: dict = {}
                    for c in cols:
                        _, feat, stat = c.split("/", 2)
                        tree.setdefault(feat, {})[stat] = np.asarray(t.column(c)[i].as_py())
                    out[int(e)] = tree
        return out
    path = root / "meta" / "episodes_stats.jsonl"
    if path.is_file():
        for d in _load_jsonl(path):
            if int(d.get("episode_index", -1)) in wanted:
                out[int(d["episode_index"])] = _as_arrays(d.get("stats", {}))
    return out


def _tasks(root: Path, version: str) -> dict[int, str]:
    if version == "v3.0":
        path = root / "meta" / "tasks.parquet"
        if not path.is_file():
            return {}
        t = read_columns(path, open_parquet(path).schema_arrow.names)
        cols = t.to_pydict()
        index = cols.get("task_index")
        text = next((v for k, v in cols.items() if k != "task_index"
                     and v and isinstance(v[0], str)), None)
        if index is None or text is None:
            raise DatasetError(f"{path}: expected a 'task_index' column and the task strings "
                               f"(the index); columns: {list(cols)}")
        return {int(i): s for i, s in zip(index, text)}
    path = root / "meta" / "tasks.jsonl"
    if not path.is_file():
        return {}
    return {int(d["task_index"]): str(d["task"]) for d in _load_jsonl(path)}
