"""HDF5 demonstrations (robomimic, ALOHA) -> ``DatasetSource``, through ``h5py``.

Install with ``pip install 'jax_robocache[hdf5]'``. Layouts:

* ``layout="robomimic"`` (robomimic's dataset structure): one file;
  ``data/demo_<k>/{actions, rewards, dones, states, obs/<key>, next_obs/<key>}``, each
  ``[num_samples, ...]``; ``data`` attributes ``total`` and ``env_args`` (JSON), each
  demo's ``num_samples``; optional ``mask/<filter_key>`` lists of demo names
  (``"train"``, ``"valid"``). Demos are ordered by k.
* ``layout="aloha"`` (ACT / ALOHA ``record_episodes.py``): one file per episode
  (``episode_<i>.hdf5``; a directory of them, or a list of paths) with
  ``observations/{qpos, qvel, effort, images/<cam>}``, ``action`` (and ``base_action``
  for Mobile ALOHA), ``[T, ...]`` each; root attributes ``sim`` and ``compress``.

Mapping: every dataset whose first axis is the episode's steps is a stream named by
its path inside the episode (``"actions"``, ``"obs/robot0_eef_pos"``,
``"observations/qpos"``), rows flattened to ``[N, D]``. Neither layout stores
timestamps: the clock is ``fps`` (required; robosuite's default control rate is
20 Hz, ALOHA records at 50 Hz). JPEG-compressed ALOHA images (``compress`` true) are
not decoded and not read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import DatasetError, LayoutError, install_hint, missing_keys_error
from .lazy import Concatenated, LazyRows, _row_dim
from .source import DatasetSource, StreamSource

LAYOUTS = ("robomimic", "aloha")


def _h5py():
    try:
        import h5py
    except ImportError as err:
        raise ImportError(f"{install_hint('hdf5', 'h5py')} ({err})") from err
    return h5py


def _open(path: Path):
    h5py = _h5py()
    if not path.is_file():
        raise FileNotFoundError(f"HDF5 file {path} does not exist")
    try:
        return h5py.File(path, "r")
    except Exception as err:  # noqa: BLE001
        raise DatasetError(f"{path} is not a readable HDF5 file (corrupt or truncated?): "
                           f"{type(err).__name__}: {err}") from err


class H5Rows(LazyRows):
    """One HDF5 dataset ``[T, ...]`` as ``[T, D]``; the file is opened for each read
    (no handle held: a directory of thousands of episode files is fine)."""

    def __init__(self, path: Path, name: str, shape, dtype):
        self.path, self.name = Path(path), name
        self.shape = (int(shape[0]), _row_dim(shape))
        self.dtype = np.dtype(dtype)

    def _read(self, start, stop):
        f = _open(self.path)
        try:
            block = f[self.name][start:stop]
        except Exception as err:  # noqa: BLE001
            raise DatasetError(f"{self.path} dataset {self.name!r}: cannot read rows "
                               f"{start}:{stop} (corrupt?): {type(err).__name__}: {err}") from err
        finally:
            f.close()
        return np.asarray(block).reshape(stop - start, self.shape[1])


def read_hdf5(path, layout: str = "robomimic", *, keys: Sequence[str] | None = None,
              episodes: Sequence | None = None, fps: float | None = None,
              filter_key: str | None = None) -> DatasetSource:
    """Describes robomimic or ALOHA HDF5 demonstrations for ``to_store()``.

    Args:
      path: robomimic: the ``.hdf5`` file. ALOHA: an episode file, a directory of
        ``episode_<i>.hdf5`` files, or a list of files.
      layout: ``"robomimic"`` or ``"aloha"``.
      keys: dataset paths inside an episode to read (default: every per-step dataset).
      episodes: robomimic: demo numbers k or names ``"demo_k"``; ALOHA: episode numbers i
        (from ``episode_<i>``; the position in the list for other names). In this order.
        Default: all, in ascending order.
      fps: the recording rate (required: neither layout stores timestamps).
      filter_key: robomimic only: read the demos listed in ``mask/<filter_key>``.

    Raises:
      FileNotFoundError, LayoutError (not this layout), KeyError (a missing key or
      episode, listing what there is), DatasetError (a corrupt file, or an episode whose
      datasets disagree in length, width or dtype: file, episode and dataset named).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if fps is None:
        raise ValueError("HDF5 demonstrations carry no timestamps: pass fps= (the control rate; "
                         "robosuite defaults to 20 Hz, ALOHA records at 50 Hz)")
    if filter_key is not None and layout != "robomimic":
        raise ValueError("filter_key applies to layout='robomimic' only")
    if layout == "robomimic":
        return _robomimic(Path(path), keys, episodes, float(fps), filter_key)
    return _aloha(path, keys, episodes, float(fps))


def _datasets(group, prefix: str = "") -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Every dataset under ``group``: relative path -> (shape, dtype)."""
    h5py = _h5py()
    out = {}
    for name, item in group.items():
        rel = f"{prefix}{name}"
        if isinstance(item, h5py.Dataset):
            out[rel] = (tuple(item.shape), item.dtype)
        elif isinstance(item, h5py.Group):
            out.update(_datasets(item, rel + "/"))
    return out


def _episode_streams(path: Path, where: str, found: dict, steps: int | None, keys, first,
                     exclude=()) -> tuple[list[str], int]:
    """Chosen keys of one episode, checked: present, same steps, same row width and dtype
    as in the first episode."""
    if steps is None:
        for candidate in ("actions", "action"):
            if candidate in found:
                steps = found[candidate][0][0] if found[candidate][0] else None
                break
    per_step = [k for k, (shape, dt) in found.items() if shape and (steps is None or
                shape[0] == steps) and dt.kind in "biuf" and k not in exclude]
    if steps is None:
        lengths = {found[k][0][0] for k in per_step}
        if len(lengths) != 1:
            raise DatasetError(f"{path} {where}: cannot tell the number of steps (no "
                               f"'actions'/'action'; first axes {sorted(lengths)})")
        steps = lengths.pop()
    chosen = per_step if keys is None else list(keys)
    missing = [k for k in chosen if k not in found]
    if missing:
        raise missing_keys_error("keys", missing, per_step, f"{path} {where}")
    for k in chosen:
        shape, dt = found[k]
        if k in exclude:
            raise ValueError(f"{path} {where}: {k!r} holds compressed images, which this "
                             "reader does not decode")
        if dt.kind not in "biuf":
            raise DatasetError(f"{path} {where}/{k}: dtype {dt} is not numeric")
        if not shape or shape[0] != steps:
            raise DatasetError(f"{path} {where}/{k}: shape {shape}, but the episode has "
                               f"{steps} steps")
        if first is not None and k in first and (first[k][0][1:], first[k][1]) != (shape[1:], dt):
            raise DatasetError(f"{path} {where}/{k}: rows {shape[1:]} {dt}, but the first "
                               f"episode's are {first[k][0][1:]} {first[k][1]}")
    return chosen, int(steps)


def _assemble(path_label, fmt, ids, parts, shapes, lengths, fps, metadata) -> DatasetSource:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    streams = {k: StreamSource(name=k, values=Concatenated(parts[k], name=k), shape=shapes[k],
                               offsets=offsets) for k in parts}
    return DatasetSource(path=str(path_label), format=fmt, episodes=np.asarray(ids, np.int64),
                         streams=streams, fps=fps, metadata=metadata)


def _demo_number(name: str) -> int:
    m = re.fullmatch(r"demo_(\d+)", name)
    return int(m.group(1)) if m else -1


def _robomimic(path: Path, keys, episodes, fps, filter_key) -> DatasetSource:
    f = _open(path)
    try:
        if "data" not in f:
            raise LayoutError(f"{path} is not a robomimic file: no 'data' group (it has "
                              f"{sorted(f.keys())})")
        demos = sorted((n for n in f["data"].keys() if _demo_number(n) >= 0), key=_demo_number)
        if not demos:
            raise LayoutError(f"{path}: 'data' holds no demo_<k> groups")
        if filter_key is not None:
            masks = f.get("mask")
            if masks is None or filter_key not in masks:
                have = sorted(masks.keys()) if masks is not None else []
                raise KeyError(f"filter key {filter_key!r} not in {path} mask/ (it has {have})")
            listed = [d.decode() if isinstance(d, bytes) else str(d) for d in masks[filter_key][:]]
            unknown = [d for d in listed if d not in demos]
            if unknown:
                raise DatasetError(f"{path} mask/{filter_key} lists demos {unknown} that "
                                   "data/ does not have")
            demos = sorted(listed, key=_demo_number)
        if episodes is not None:
            wanted = [e if isinstance(e, str) else f"demo_{int(e)}" for e in episodes]
            if len(set(wanted)) != len(wanted):
                raise ValueError(f"episodes lists a demo twice: {wanted}")
            missing = [d for d in wanted if d not in demos]
            if missing:
                raise KeyError(f"episodes {missing} are not in {path}"
                               f"{'' if filter_key is None else ' mask/' + filter_key}; it has "
                               f"{len(demos)} demos ({_abbreviate(demos)})")
            demos = wanted
        if not demos:
            raise ValueError(f"{path}: the selection (episodes={episodes!r}, filter_key="
                             f"{filter_key!r}) holds no demo")
        first, chosen = None, None
        parts: dict[str, list] = {}
        lengths, demo_attrs = [], {}
        for d in demos:
            g = f["data"][d]
            found = _datasets(g)
            n = g.attrs.get("num_samples")
            chosen, steps = _episode_streams(path, f"data/{d}", found,
                                             None if n is None else int(n),
                                             keys if chosen is None else chosen, first)
            if first is None:
                first = found
            for k in chosen:
                shape, dt = found[k]
                parts.setdefault(k, []).append(H5Rows(path, f"data/{d}/{k}", shape, dt))
            lengths.append(steps)
            demo_attrs[d] = {k: _attr(v) for k, v in g.attrs.items()}
        attrs = {k: _attr(v) for k, v in f["data"].attrs.items()}
        if isinstance(attrs.get("env_args"), str):
            try:
                attrs["env_args"] = json.loads(attrs["env_args"])
            except ValueError:
                pass
        shapes = {k: tuple(int(s) for s in first[k][0][1:]) for k in chosen}
        metadata = {"attrs": attrs, "demos": demos, "demo_attrs": demo_attrs,
                    "filter_keys": sorted(f["mask"].keys()) if "mask" in f else []}
    except (OSError, RuntimeError) as err:
        raise DatasetError(f"{path}: cannot read (corrupt?): {type(err).__name__}: {err}") \
            from err
    finally:
        f.close()
    return _assemble(path, "hdf5 robomimic", [_demo_number(d) for d in demos], parts, shapes,
                     lengths, fps, metadata)


def _abbreviate(names, n: int = 5) -> str:
    return str(names) if len(names) <= n else f"{names[:n]} ..."


def _attr(v):
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, np.generic):
        return v.item()
    return v


def _episode_id(p: Path, position: int) -> int:
    m = re.search(r"(\d+)$", p.stem)
    return int(m.group(1)) if m else position


def _aloha(path, keys, episodes, fps) -> DatasetSource:
    if isinstance(path, (str, Path)):
        p = Path(path)
        if p.is_dir():
            files = sorted([*p.glob("*.hdf5"), *p.glob("*.h5")],
                           key=lambda q: (_episode_id(q, 0), q.name))
            if not files:
                raise LayoutError(f"{p} holds no .hdf5 / .h5 episode files")
        elif p.exists():
            files = [p]
        else:
            raise FileNotFoundError(f"ALOHA episode file or directory {p} does not exist")
    else:
        files = [Path(q) for q in path]
    ids = [_episode_id(q, k) for k, q in enumerate(files)]
    if len(set(ids)) != len(ids):
        ids = list(range(len(files)))
    if episodes is not None:
        by_id = dict(zip(ids, files))
        wanted = [int(e) for e in episodes]
        if len(set(wanted)) != len(wanted):
            raise ValueError(f"episodes lists an episode twice: {wanted}")
        missing = [e for e in wanted if e not in by_id]
        if missing:
            raise KeyError(f"episodes {missing} not found; episode files: {sorted(by_id)}")
        files, ids = [by_id[e] for e in wanted], wanted
    if not files:
        raise ValueError("episodes selects no episode file")
    first, chosen = None, None
    parts: dict[str, list] = {}
    lengths, attrs = [], {}
    for q, e in zip(files, ids):
        f = _open(q)
        try:
            if "action" not in f or "observations" not in f:
                raise LayoutError(f"{q} is not an ALOHA episode: it needs 'action' and "
                                  f"'observations' (it has {sorted(f.keys())})")
            found = _datasets(f)
            compressed = bool(f.attrs.get("compress", False))
            exclude = tuple(k for k in found if compressed and
                            k.startswith("observations/images/"))
            chosen, steps = _episode_streams(q, f"episode {e}", found, None,
                                             keys if chosen is None else chosen, first, exclude)
            if first is None:
                first = found
            for k in chosen:
                shape, dt = found[k]
                parts.setdefault(k, []).append(H5Rows(q, k, shape, dt))
            lengths.append(steps)
            attrs[e] = {k: _attr(v) for k, v in f.attrs.items()}
        except (OSError, RuntimeError) as err:
            raise DatasetError(f"{q}: cannot read (corrupt?): {type(err).__name__}: {err}") \
                from err
        finally:
            f.close()
    shapes = {k: tuple(int(s) for s in first[k][0][1:]) for k in chosen}
    label = path if isinstance(path, (str, Path)) else files[0].parent
    return _assemble(label, "hdf5 aloha", ids, parts, shapes, lengths, fps,
                     {"attrs": attrs, "files": [str(q) for q in files]})
