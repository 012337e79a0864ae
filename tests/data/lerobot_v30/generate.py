"""Writes this fixture with LeRobot itself, and records what ``LeRobotDataset`` returns.

Run in a separate environment (lerobot pulls torch; it is never a project requirement)::

    python -m venv /tmp/venv-lerobot && /tmp/venv-lerobot/bin/pip install lerobot==0.4.4
    /tmp/venv-lerobot/bin/python tests/data/lerobot_v30/generate.py

Contents: ``dataset/`` (LeRobotDataset v3.0, fps 4, 3 episodes of the real recording
``jax_robocache/demo/data/sena.npz``: episode 0 keeps the recording's own irregular
timestamps (set in LeRobot's episode buffer: its ``add_frame`` takes no timestamp),
episodes 1 and 2 the default ``frame_index / fps``), and ``expected.npz``:
``LeRobotDataset(..., delta_timestamps=DELTA_TIMESTAMPS)[i]`` for every frame i
(windows and ``*_is_pad`` masks), plus the lerobot version that wrote it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SENA = HERE.parents[2] / "jax_robocache" / "demo" / "data" / "sena.npz"
REPO_ID = "jax_robocache/sena_fixture"
FPS = 4
EPISODES = ((0, 12), (12, 21), (21, 30))
DELTA_TIMESTAMPS = {"observation.state": [-0.5, -0.25, 0.0],
                    "action": [0.0, 0.25, 0.5, 0.75]}
FEATURES = {
    "observation.state": {"dtype": "float32", "shape": (3,), "names": ["dx", "dy", "dphi"]},
    "observation.scan": {"dtype": "float32", "shape": (9,), "names": None},
    "action": {"dtype": "float32", "shape": (2,), "names": ["v", "w"]},
}


def frames():
    with np.load(SENA) as d:
        t, ranges, inc = d["scan_t"], d["ranges"], d["odo_inc"]
    for e, (a, b) in enumerate(EPISODES):
        for i in range(a, b):
            frame = {"observation.state": inc[i].astype(np.float32),
                     "observation.scan": ranges[i, ::45].astype(np.float32),
                     "action": np.float32([inc[i, 0] * FPS, inc[i, 2] * FPS]),
                     "task": "drive the corridor"}
            stamp = float(np.float32(t[i] - t[a])) if e == 0 else None
            yield e, i == b - 1, frame, stamp


def main():
    import lerobot
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = HERE / "dataset"
    shutil.rmtree(root, ignore_errors=True)
    ds = LeRobotDataset.create(repo_id=REPO_ID, fps=FPS, features=FEATURES, root=root,
                               use_videos=False)
    for _, last, frame, stamp in frames():
        ds.add_frame(frame)
        if stamp is not None:
            # lerobot 0.4.4's add_frame refuses a "timestamp" key (validate_frame runs before
            # it would pop it) and stamps frame_index / fps: set the recorded stamp in its
            # episode buffer, which save_episode writes.
            ds.episode_buffer["timestamp"][-1] = stamp
        if last:
            ds.save_episode()
    ds.finalize()

    ds = LeRobotDataset(REPO_ID, root=root, delta_timestamps=DELTA_TIMESTAMPS)
    items = [ds[i] for i in range(len(ds))]
    out = {"lerobot_version": np.array(getattr(lerobot, "__version__", "unknown"))}
    for key in ("index", "episode_index", "frame_index", "timestamp", "task_index"):
        out[key] = np.stack([np.asarray(it[key]) for it in items])
    for key in DELTA_TIMESTAMPS:
        out[key] = np.stack([np.asarray(it[key]) for it in items])
        out[f"{key}_is_pad"] = np.stack([np.asarray(it[f"{key}_is_pad"]) for it in items])
    out["observation.scan"] = np.stack([np.asarray(it["observation.scan"]) for it in items])
    np.savez(HERE / "expected.npz", **out)
    print(f"wrote {root} and expected.npz ({len(items)} frames)")


if __name__ == "__main__":
    main()
