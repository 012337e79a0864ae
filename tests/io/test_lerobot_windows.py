"""A LeRobot dataset read into a store gives LeRobot's own training windows: delta_timestamps ->
delta_indices, indices clamped into the episode, is_pad outside (lerobot_dataset.py
``_get_query_indices``, written out below in numpy), through ``sample_windows``."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyarrow")

import io_data  # noqa: E402
import lerobot_writer  # noqa: E402

from jax_robocache.io import read_lerobot  # noqa: E402

def lerobot_windows(values, ep_from, ep_to, abs_idx, delta_indices):
    """LeRobotDataset._get_query_indices (v0.4.4 / v0.3.3) and the values it returns."""
    q = [max(ep_from, min(ep_to - 1, abs_idx + d)) for d in delta_indices]
    pad = [(abs_idx + d < ep_from) or (abs_idx + d >= ep_to) for d in delta_indices]
    return values[q], np.array(pad)


def test_index_windows_match_lerobot_rule(tmp_path):
    from jax_robocache.episodes import Window, sample_windows

    fps = 30
    episodes = io_data.regular_episodes(lengths=(12, 1, 20), fps=fps, seed=9)
    lerobot_writer.write_v30(tmp_path, episodes, fps=fps, episodes_per_file=2)
    src = read_lerobot(tmp_path, keys=["observation.state", "action"])
    store = src.to_store()
    delta_timestamps = {"observation.state": [-2 / fps, -1 / fps, 0.0],
                        "action": [k / fps for k in range(8)]}
    delta_indices = {k: [round(d * fps) for d in v] for k, v in delta_timestamps.items()}
    spec = {k: Window(steps=tuple(v)) for k, v in delta_indices.items()}
    offsets = src["action"].offsets
    ep = np.repeat(np.arange(3), np.diff(offsets)).astype(np.int32)
    anchor = src["action"].times.astype(np.float32)  # every frame of the dataset as an anchor
    out = sample_windows(store, ep, anchor, spec)
    for key, deltas in delta_indices.items():
        flat = np.asarray(src[key].values)
        got_v, got_valid = np.asarray(out[key].values), np.asarray(out[key].valid)
        for i in range(len(anchor)):
            e = ep[i]
            want_v, pad = lerobot_windows(flat, offsets[e], offsets[e + 1], i, deltas)
            np.testing.assert_array_equal(got_valid[i], ~pad, err_msg=f"{key} frame {i}")
            np.testing.assert_array_equal(got_v[i], want_v, err_msg=f"{key} frame {i}")
