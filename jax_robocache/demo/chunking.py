"""The action-chunking task: episodes, the store, the window spec, and the host loader.

A policy sees the robot's state history (2 samples) plus a camera embedding and
the mean wrench over the last 20 ms, and predicts the next 50 actions (ACT /
LeRobot's action chunking). Episodes come from ``synthetic.multirate_episodes``:
joints at 50 Hz (14 D, clock jitter, dropouts, burst gaps), force 1 kHz (6 D),
camera features 15 Hz. The state stream is the joint positions, the action at
sample k is the commanded position, i.e. the state at sample k + 1 (so an
episode has one action fewer than it has joint samples; both streams share the
first n - 1 stamps).

Two loaders give the same batch (``chunk_windows`` in-graph, ``HostLoader`` per
sample in numpy):

* ``observation.state`` (``state``): index window ``steps=(-1, 0)``;
* ``action``: index window ``steps=range(50)``; ``is_pad = ~valid`` where the
  chunk leaves the episode (LeRobot clamps the index and pads);
* ``camera``: time window at the anchor, ``previous`` sample, tolerance 0.1 s;
* ``wrench`` (opt-in, ``wrench=True``): time window at the anchor, mean of the
  force samples in (anchor - 20 ms, anchor], invalid when empty. Off by default:
  the jnp twin's ``window_mean`` builds a segment tree over the whole force
  stream on every call (O(N D)), which dominates a CPU step;
* both time windows are invalid outside their stream's first..last stamp
  (``align``'s rule).

Anchors are the action stream's sample times whose state history lies inside
the episode (``require={"state": ...}``), drawn uniformly.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..episodes import EpisodeStore, Window
from .synthetic import multirate_episodes

CHUNK = 50
HISTORY = (-1, 0)
WRENCH_WINDOW_S = 0.02
CAMERA_TOLERANCE_S = 0.1


def spec(chunk: int = CHUNK, wrench: bool = False) -> dict:
    """The windows of one training sample (LeRobot's ``delta_timestamps`` / ACT)."""
    out = {"state": Window(steps=HISTORY), "action": Window(steps=range(chunk)),
           "camera": Window(seconds=(0.0,), method="previous", tolerance=CAMERA_TOLERANCE_S)}
    if wrench:
        out["wrench"] = Window(seconds=(0.0,), stream="force", method="window_mean",
                               window=WRENCH_WINDOW_S)
    return out


def require() -> dict:
    """Anchors need a complete state history (the action chunk may run into padding)."""
    return {"state": Window(steps=HISTORY)}


@dataclasses.dataclass(frozen=True)
class Episodes:
    """Per-episode host arrays (float32; times in seconds from the episode's start)."""

    values: dict  # name -> list of [n_e, D]
    times: dict  # name -> list of [n_e]

    @property
    def num_episodes(self) -> int:
        return len(self.values["state"])

    def subset(self, index) -> "Episodes":
        pick = lambda seq: [seq[i] for i in index]  # noqa: E731
        return Episodes({k: pick(v) for k, v in self.values.items()},
                        {k: pick(v) for k, v in self.times.items()})

    def store(self) -> EpisodeStore:
        return EpisodeStore.from_episodes(self.values, self.times)


def make_episodes(num_episodes: int, duration_s: float, *, camera_dim: int = 64,
                  seed: int = 0) -> Episodes:
    """``num_episodes`` synthetic episodes (see the module docstring)."""
    raw = multirate_episodes(num_episodes, duration_s, joints_hz=50.0, force_hz=1000.0,
                             camera_hz=15.0, camera_dim=camera_dim, seed=seed)
    values = {k: [] for k in ("state", "action", "camera", "force")}
    times = {k: [] for k in values}
    for e in range(num_episodes):
        cut = {}
        for name, s in raw.items():
            n = int(s.lengths[e])
            cut[name] = (np.asarray(s.values[e, :n], np.float32),
                         np.asarray(s.times[e, :n], np.float32))
        joints, t = cut["joints"]
        values["state"].append(joints[:-1])
        times["state"].append(t[:-1])
        values["action"].append(joints[1:])
        times["action"].append(t[:-1])
        for name in ("camera", "force"):
            values[name].append(cut[name][0])
            times[name].append(cut[name][1])
    return Episodes(values, times)


class HostLoader:
    """A per-sample loader as LeRobot writes it: Python indexing, one sample at a time.

    Frames are addressed by a global index over the action stream
    (``episode_data_index`` from/to); ``delta_indices`` are clamped into the episode and
    flagged ``is_pad``; time windows search the stream's stamps per sample.
    """

    def __init__(self, episodes: Episodes, chunk: int = CHUNK, wrench: bool = False):
        self.ep, self.chunk, self.wrench = episodes, chunk, wrench
        n = np.array([len(t) for t in episodes.times["action"]])
        self.start = np.concatenate([[0], np.cumsum(n)])
        # eligible frames: a complete state history (the anchor's index plus HISTORY)
        idx = [np.arange(self.start[e], self.start[e + 1])[-HISTORY[0]:] for e in range(len(n))]
        self.eligible = np.concatenate(idx) if idx else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self.eligible)

    def _index_window(self, x: np.ndarray, i: int, deltas):
        j = i + np.asarray(deltas)
        valid = (j >= 0) & (j < len(x))
        return x[np.clip(j, 0, len(x) - 1)], valid

    def item(self, frame: int) -> dict:
        """One training sample (a dict of numpy arrays) for a global frame index."""
        e = int(np.searchsorted(self.start, frame, side="right") - 1)
        i = frame - int(self.start[e])
        v, t = self.ep.values, self.ep.times
        anchor = t["action"][e][i]
        state, state_ok = self._index_window(v["state"][e], i, HISTORY)
        action, action_ok = self._index_window(v["action"][e], i, range(self.chunk))
        ct = t["camera"][e]
        k = int(np.searchsorted(ct, anchor, side="right")) - 1
        camera_ok = (len(ct) > 0 and ct[0] <= anchor <= ct[-1]
                     and np.float32(anchor - ct[k]) <= np.float32(CAMERA_TOLERANCE_S))
        camera = v["camera"][e][max(k, 0)] if len(ct) else np.zeros(v["camera"][e].shape[1:])
        item = {"state": state, "state_is_pad": ~state_ok, "action": action,
                "action_is_pad": ~action_ok, "camera": camera.astype(np.float32),
                "camera_is_pad": not camera_ok}
        if not self.wrench:
            return item
        ft = t["force"][e]
        lo = int(np.searchsorted(ft, np.float32(anchor - np.float32(WRENCH_WINDOW_S)),
                                 side="right"))
        hi = int(np.searchsorted(ft, anchor, side="right"))
        wrench_ok = hi > lo and ft[0] <= anchor <= ft[-1]
        wrench = (v["force"][e][lo:hi].mean(axis=0, dtype=np.float64) if wrench_ok else
                  np.zeros(v["force"][e].shape[1:]))
        item.update(wrench=wrench.astype(np.float32), wrench_is_pad=not wrench_ok)
        return item

    def batch(self, frames) -> dict:
        """Collates per-sample items, as a ``DataLoader`` does."""
        items = [self.item(int(f)) for f in frames]
        return {k: np.stack([it[k] for it in items]) for k in items[0]}

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict:
        """A batch of frames drawn uniformly from the eligible ones."""
        return self.batch(self.eligible[rng.integers(0, len(self.eligible), batch_size)])
