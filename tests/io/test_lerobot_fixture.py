"""read_lerobot on a dataset written by LeRobot 0.4.4 itself, against what LeRobotDataset returned
(tests/data/lerobot_v30/generate.py): frames, timestamps, and the delta_timestamps windows with
their is_pad masks (through sample_windows once the store is merged)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from jax_robocache.io import read_lerobot  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "lerobot_v30"
DELTA_TIMESTAMPS = {"observation.state": [-0.5, -0.25, 0.0], "action": [0.0, 0.25, 0.5, 0.75]}
FPS = 4


@pytest.fixture(scope="module")
def expected():
    with np.load(FIXTURE / "expected.npz") as d:
        return {k: d[k] for k in d.files}


@pytest.fixture(scope="module")
def src():
    return read_lerobot(FIXTURE / "dataset")


def test_frames_and_clock_match_lerobot(src, expected):
    assert src.format == "lerobot v3.0" and src.fps == FPS
    N = len(expected["index"])
    ep = np.repeat(np.arange(src.num_episodes), np.diff(src["action"].offsets))
    np.testing.assert_array_equal(src.episodes[ep], expected["episode_index"])
    np.testing.assert_array_equal(src["action"].times, expected["timestamp"])
    np.testing.assert_array_equal(np.asarray(src["observation.scan"].values),
                                  expected["observation.scan"])
    # the anchor frame of each window (delta 0) is the frame itself
    np.testing.assert_array_equal(np.asarray(src["observation.state"].values),
                                  expected["observation.state"][:, 2])
    np.testing.assert_array_equal(np.asarray(src["action"].values), expected["action"][:, 0])
    np.testing.assert_array_equal(np.asarray(src["task_index"].values)[:, 0],
                                  expected["task_index"])
    assert src.metadata["tasks"] == {0: "drive the corridor"}
    assert N == src["action"].values.shape[0]
    for key in ("observation.state", "action"):
        assert set(src.stats[key]) >= {"mean", "std", "min", "max", "count"}


def test_diagnostics_flag_the_real_clock_only(src):
    reps = src.diagnostics.reports
    assert not reps[0].ok  # episode 0 keeps the recording's irregular stamps
    assert reps[1].ok and reps[2].ok  # frame_index / fps


@pytest.mark.skipif(importlib.util.find_spec("jax_robocache.episodes") is None,
                    reason="jax_robocache.episodes (EpisodeStore) not merged yet")
def test_windows_match_lerobot(src, expected):
    from jax_robocache.episodes import Window, sample_windows

    steps = {k: tuple(round(d * FPS) for d in v) for k, v in DELTA_TIMESTAMPS.items()}
    store = src.to_store(list(steps))
    offsets = src["action"].offsets
    ep = np.repeat(np.arange(src.num_episodes), np.diff(offsets)).astype(np.int32)
    out = sample_windows(store, ep, src["action"].times.astype(np.float32),
                         {k: Window(steps=v) for k, v in steps.items()})
    for key in steps:
        np.testing.assert_array_equal(np.asarray(out[key].valid), ~expected[f"{key}_is_pad"])
        np.testing.assert_array_equal(np.asarray(out[key].values), expected[key])
