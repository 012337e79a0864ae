"""read_lerobot on datasets written by LeRobot itself (0.4.4: v3.0, 0.3.3: v2.1), against what
LeRobotDataset returned (tests/data/lerobot_generate.py): frames, clock, tasks, the dataset's
stats, and the delta_timestamps windows with their is_pad masks (through sample_windows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from jax_robocache.io import read_lerobot  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"
DELTA_TIMESTAMPS = {"observation.state": [-0.5, -0.25, 0.0], "action": [0.0, 0.25, 0.5, 0.75]}
FPS = 4
FIXTURES = {"lerobot_v30": ("v3.0", "0.4.4"), "lerobot_v21": ("v2.1", "0.3.3")}


@pytest.fixture(scope="module", params=sorted(FIXTURES))
def case(request):
    with np.load(DATA / request.param / "expected.npz") as d:
        expected = {k: d[k] for k in d.files}
    return request.param, read_lerobot(DATA / request.param / "dataset"), expected


def test_frames_and_clock_match_lerobot(case):
    name, src, expected = case
    version, lerobot_version = FIXTURES[name]
    assert str(expected["lerobot_version"]) == lerobot_version
    assert src.format == f"lerobot {version}" and src.fps == FPS
    N = len(expected["index"])
    assert src["action"].values.shape[0] == N
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


def test_stats_match_lerobot(case):
    """v3.0: meta/stats.json as LeRobot loads it; v2.1 (no stats.json): the per-episode stats
    combined as LeRobot's aggregate_stats does."""
    _, src, expected = case
    keys = [k for k in expected if k.startswith("stats/")]
    assert keys
    for k in keys:
        _, feat, stat = k.split("/")
        np.testing.assert_allclose(np.asarray(src.stats[feat][stat], np.float64),
                                   expected[k].astype(np.float64), rtol=1e-13, atol=0, err_msg=k)


def test_diagnostics(case):
    name, src, _ = case
    reps = src.diagnostics.reports
    if name == "lerobot_v30":
        assert not reps[0].ok  # episode 0 keeps the recording's irregular stamps
        assert reps[1].ok and reps[2].ok  # frame_index / fps
    else:
        assert src.diagnostics.ok  # lerobot 0.3.3 accepts only regular clocks


def test_windows_match_lerobot(case):
    from jax_robocache.episodes import Window, sample_windows

    _, src, expected = case
    steps = {k: tuple(round(d * FPS) for d in v) for k, v in DELTA_TIMESTAMPS.items()}
    store = src.to_store(list(steps))
    offsets = src["action"].offsets
    ep = np.repeat(np.arange(src.num_episodes), np.diff(offsets)).astype(np.int32)
    out = sample_windows(store, ep, src["action"].times.astype(np.float32),
                         {k: Window(steps=v) for k, v in steps.items()})
    for key in steps:
        np.testing.assert_array_equal(np.asarray(out[key].valid), ~expected[f"{key}_is_pad"])
        np.testing.assert_array_equal(np.asarray(out[key].values), expected[key])


def test_store_stats_agree_with_lerobots(case):
    """The store's own statistics over the streams read agree with the dataset's (LeRobot's
    numpy float64 over the same float32 frames): min / max / count exactly, mean / std to
    float32 rounding."""
    _, src, expected = case
    keys = ["observation.state", "action", "observation.scan"]
    stats = src.to_store(keys).stats(keys)
    for k in keys:
        got = stats[k].as_dict()
        for stat in ("min", "max"):
            np.testing.assert_array_equal(np.asarray(got[stat], np.float64),
                                          expected[f"stats/{k}/{stat}"], err_msg=f"{k} {stat}")
        np.testing.assert_array_equal(np.asarray(got["count"]).ravel(),
                                      np.asarray(expected[f"stats/{k}/count"]).ravel())
        for stat in ("mean", "std"):
            np.testing.assert_allclose(np.asarray(got[stat], np.float64),
                                       expected[f"stats/{k}/{stat}"], rtol=2e-6, atol=1e-6,
                                       err_msg=f"{k} {stat}")
