"""Writes LeRobotDataset directories (v3.0 and v2.1 layouts) with pyarrow, as LeRobot lays them out.

Paths and columns follow lerobot's ``datasets/utils.py`` and ``lerobot_dataset.py``
(v0.4.4 for v3.0, v0.3.3 for v2.1). Frames of a 1-D feature are Arrow fixed-size
lists (HF ``Sequence(length=n)``) in v3.0 and variable lists in v2.1 (both occur in
published datasets); a ``(1,)`` feature is a scalar column. Videos are not encoded:
their per-episode entries in the episode table are written, no mp4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


def _column(values: np.ndarray, shape, fixed: bool) -> pa.Array:
    values = np.asarray(values)
    n = len(values)
    if tuple(shape) == (1,):
        return pa.array(values.reshape(n))
    flat = pa.array(values.reshape(-1))
    for dim in reversed(shape):
        if fixed:
            flat = pa.FixedSizeListArray.from_arrays(flat, int(dim))
        else:
            offs = pa.array(np.arange(0, len(flat) + 1, dim, dtype=np.int32))
            flat = pa.ListArray.from_arrays(offs, flat)
    return flat


def _features(episodes, video_keys, fps):
    feats = {}
    for k, v in episodes[0].items():
        if k in ("timestamp",):
            continue
        if isinstance(v, list):  # encoded images (bytes), one per frame
            feats[k] = {"dtype": "image", "shape": [8, 8, 3],
                        "names": ["height", "width", "channels"]}
            continue
        shape = list(v.shape[1:]) or [1]
        feats[k] = {"dtype": str(v.dtype), "shape": shape,
                    "names": [f"{k}_{i}" for i in range(shape[-1])] if len(shape) == 1 else None}
    for k in video_keys:
        feats[k] = {"dtype": "video", "shape": [8, 8, 3], "names": ["height", "width", "channels"],
                    "info": {"video.fps": float(fps), "video.codec": "av1"}}
    feats.update({k: dict(v) for k, v in DEFAULT_FEATURES.items()})
    return feats


def _frame_tables(episodes, features, first_episode=0, fixed=True):
    tables, index = [], 0
    for e, ep in enumerate(episodes):
        n = len(ep["timestamp"])
        cols = {}
        for k, ft in features.items():
            if ft["dtype"] == "video":
                continue
            if ft["dtype"] == "image":
                cols[k] = pa.array([{"bytes": b, "path": None} for b in ep[k]],
                                   pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
            elif k == "timestamp":
                cols[k] = pa.array(np.asarray(ep["timestamp"], np.float32))
            elif k == "frame_index":
                cols[k] = pa.array(np.arange(n, dtype=np.int64))
            elif k == "episode_index":
                cols[k] = pa.array(np.full(n, first_episode + e, np.int64))
            elif k == "index":
                cols[k] = pa.array(np.arange(index, index + n, dtype=np.int64))
            elif k == "task_index" and k not in ep:
                cols[k] = pa.array(np.full(n, e % 2, np.int64))
            else:
                cols[k] = _column(ep[k], ft["shape"], fixed)
        index += n
        tables.append(pa.table(cols))
    return tables


def numpy_stats(episodes, features):
    """mean / std / min / max / count per numeric feature over all frames (float64)."""
    stats = {}
    for k, ft in features.items():
        if ft["dtype"] in ("video", "image") or k not in episodes[0]:
            continue
        x = np.concatenate([np.asarray(ep[k], np.float64).reshape(len(ep[k]), -1)
                            for ep in episodes])
        stats[k] = {"mean": x.mean(0).tolist(), "std": x.std(0).tolist(),
                    "min": x.min(0).tolist(), "max": x.max(0).tolist(), "count": [len(x)]}
    return stats


def write_v30(root, episodes, *, fps=30, video_keys=(), episodes_per_file=2, row_group_size=None,
              tasks=("pick", "place")):
    """``episodes``: list of dicts name -> [n, ...] arrays, with ``timestamp`` [n]."""
    root = Path(root)
    features = _features(episodes, video_keys, fps)
    tables = _frame_tables(episodes, features, fixed=True)
    meta_rows, start = [], 0
    for f0 in range(0, len(episodes), episodes_per_file):
        file_index = f0 // episodes_per_file
        path = root / "data" / "chunk-000" / f"file-{file_index:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        block = pa.concat_tables(tables[f0:f0 + episodes_per_file])
        pq.write_table(block, path, row_group_size=row_group_size)
        video_t = {k: 0.0 for k in video_keys}
        for e in range(f0, min(f0 + episodes_per_file, len(episodes))):
            n = len(episodes[e]["timestamp"])
            row = {"episode_index": e, "tasks": [tasks[e % len(tasks)]], "length": n,
                   "data/chunk_index": 0, "data/file_index": file_index,
                   "dataset_from_index": start, "dataset_to_index": start + n}
            for k in video_keys:
                dur = n / fps
                row.update({f"videos/{k}/chunk_index": 0, f"videos/{k}/file_index": file_index,
                            f"videos/{k}/from_timestamp": video_t[k],
                            f"videos/{k}/to_timestamp": video_t[k] + dur})
                video_t[k] += dur
            for k, v in numpy_stats([episodes[e]], features).items():
                for s, val in v.items():
                    row[f"stats/{k}/{s}"] = val
            row["meta/episodes/chunk_index"] = 0
            row["meta/episodes/file_index"] = 0
            meta_rows.append(row)
            start += n
    path = root / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(meta_rows), path)
    pq.write_table(pa.table({"task_index": pa.array(np.arange(len(tasks), dtype=np.int64)),
                             "__index_level_0__": pa.array(list(tasks))}),
                   root / "meta" / "tasks.parquet")
    info = {"codebase_version": "v3.0", "robot_type": "test", "total_episodes": len(episodes),
            "total_frames": start, "total_tasks": len(tasks), "chunks_size": 1000,
            "data_files_size_in_mb": 100, "video_files_size_in_mb": 200, "fps": fps,
            "splits": {"train": f"0:{len(episodes)}"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": ("videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
                           if video_keys else None),
            "features": features}
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    (root / "meta" / "stats.json").write_text(json.dumps(numpy_stats(episodes, features)))
    return info


def write_v21(root, episodes, *, fps=30, video_keys=(), chunks_size=2, tasks=("pick", "place"),
              stale_stats_json=False):
    """v2.1 as lerobot 0.3 writes it (no ``meta/stats.json``; ``stale_stats_json`` adds one with
    wrong numbers, which LeRobot ignores for v2.1)."""
    root = Path(root)
    features = _features(episodes, video_keys, fps)
    tables = _frame_tables(episodes, features, fixed=False)
    meta = root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    lines, stat_lines = [], []
    for e, t in enumerate(tables):
        path = root / "data" / f"chunk-{e // chunks_size:03d}" / f"episode_{e:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(t, path)
        lines.append({"episode_index": e, "tasks": [tasks[e % len(tasks)]], "length": len(t)})
        stat_lines.append({"episode_index": e,
                           "stats": numpy_stats([episodes[e]], features)})
    (meta / "episodes.jsonl").write_text("".join(json.dumps(d) + "\n" for d in lines))
    (meta / "episodes_stats.jsonl").write_text("".join(json.dumps(d) + "\n" for d in stat_lines))
    (meta / "tasks.jsonl").write_text("".join(json.dumps({"task_index": i, "task": t}) + "\n"
                                              for i, t in enumerate(tasks)))
    info = {"codebase_version": "v2.1", "robot_type": "test", "total_episodes": len(episodes),
            "total_frames": int(sum(len(t) for t in tables)), "total_tasks": len(tasks),
            "total_videos": len(video_keys) * len(episodes),
            "total_chunks": (len(episodes) + chunks_size - 1) // chunks_size,
            "chunks_size": chunks_size, "fps": fps, "splits": {"train": f"0:{len(episodes)}"},
            "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
            "video_path": ("videos/chunk-{episode_chunk:03d}/{video_key}/"
                           "episode_{episode_index:06d}.mp4" if video_keys else None),
            "features": features}
    (meta / "info.json").write_text(json.dumps(info, indent=4))
    if stale_stats_json:  # lerobot 0.3 writes none; one left over from a v2.0 conversion
        (meta / "stats.json").write_text(json.dumps(
            {k: {s: [v * 2 for v in vals] for s, vals in st.items()}
             for k, st in numpy_stats(episodes, features).items()}))
    return info
