"""Writes the LeRobot fixtures with LeRobot itself, and records what ``LeRobotDataset`` returns.

Run in a separate environment (lerobot pulls torch; it is never a project requirement)::

    python -m venv /tmp/venv-lerobot && /tmp/venv-lerobot/bin/pip install lerobot==0.4.4
    /tmp/venv-lerobot/bin/python tests/data/lerobot_generate.py     # -> lerobot_v30/
    # with lerobot==0.3.3 instead:                                   # -> lerobot_v21/

Contents of ``lerobot_v30/`` or ``lerobot_v21/``: ``dataset/`` (fps 4, 3 episodes of the
real recording ``jax_robocache/demo/data/sena.npz``) and ``expected.npz``:
``LeRobotDataset(..., delta_timestamps=DELTA_TIMESTAMPS)[i]`` for every frame i (windows
and ``*_is_pad`` masks), plus the lerobot version that wrote it. In v3.0, episode 0 keeps
the recording's own irregular timestamps (set in LeRobot's episode buffer: 0.4.4's
``add_frame`` takes no timestamp) and episodes 1 and 2 the default ``frame_index / fps``;
lerobot 0.3.3 refuses irregular timestamps when it saves or loads an episode
(``check_timestamps_sync``), so every v2.1 episode has the default clock.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent
SENA = DATA.parent.parent / "jax_robocache" / "demo" / "data" / "sena.npz"
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


def frames(irregular: bool):
    with np.load(SENA) as d:
        t, ranges, inc = d["scan_t"], d["ranges"], d["odo_inc"]
    for e, (a, b) in enumerate(EPISODES):
        for i in range(a, b):
            frame = {"observation.state": inc[i].astype(np.float32),
                     "observation.scan": ranges[i, ::45].astype(np.float32),
                     "action": np.float32([inc[i, 0] * FPS, inc[i, 2] * FPS]),
                     "task": "drive the corridor"}
            stamp = float(np.float32(t[i] - t[a])) if e == 0 and irregular else None
            yield e, i == b - 1, frame, stamp


def main():
    import lerobot
    from lerobot.datasets.lerobot_dataset import CODEBASE_VERSION, LeRobotDataset

    v3 = CODEBASE_VERSION == "v3.0"
    here = DATA / ("lerobot_v30" if v3 else "lerobot_v21")
    root = here / "dataset"
    shutil.rmtree(root, ignore_errors=True)
    ds = LeRobotDataset.create(repo_id=REPO_ID, fps=FPS, features=FEATURES, root=root,
                               use_videos=False)
    for _, last, frame, stamp in frames(irregular=v3):
        if v3:
            ds.add_frame(frame)
        else:  # lerobot 0.3.x: the task is an argument
            ds.add_frame({k: v for k, v in frame.items() if k != "task"}, task=frame["task"])
        if stamp is not None:
            # lerobot 0.4.4's add_frame refuses a "timestamp" key (validate_frame runs before
            # it would pop it) and stamps frame_index / fps: set the recorded stamp in its
            # episode buffer, which save_episode writes.
            ds.episode_buffer["timestamp"][-1] = stamp
        if last:
            ds.save_episode()
    if hasattr(ds, "finalize"):
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
    for feat, stats in ds.meta.stats.items():  # the dataset's stats as LeRobot loads them
        for stat, v in stats.items():
            out[f"stats/{feat}/{stat}"] = np.asarray(v)
    np.savez(here / "expected.npz", **out)
    print(f"wrote {root} and expected.npz ({len(items)} frames)")


if __name__ == "__main__":
    main()
