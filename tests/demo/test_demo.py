"""The LiDAR demo (--task lidar): its preprocessing (in-graph vs numpy vs a float64 reference),
a smoke run, --bag. The default task (action chunking): test_chunking.py."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_robocache.demo import main
from jax_robocache.demo.episode import eval_blocks, load_sena, sena_arrays
from jax_robocache.demo.task import TaskConfig, preprocess_jax, preprocess_numpy


@pytest.fixture(scope="module")
def sena():
    episode = load_sena()
    cfg = TaskConfig.for_episode(episode)
    return episode, cfg, episode.query_clock(cfg.rate_hz, cfg.horizon_s)


def reference_motions(q: np.ndarray, h: float):
    """float64, written from the task's definition: past and future (dx, dy, dyaw) at q."""
    data = sena_arrays()
    t = data["odo_t"] - min(data["odo_t"][0], data["scan_t"][0])
    x = y = yaw = 0.0
    poses = []
    for dx, dy, dphi in data["odo_inc"].astype(np.float64):
        x, y = x + np.cos(yaw) * dx - np.sin(yaw) * dy, y + np.sin(yaw) * dx + np.cos(yaw) * dy
        yaw += dphi
        poses.append((x, y, yaw))
    poses = np.asarray(poses)
    at = lambda s: np.stack([np.interp(s, t, poses[:, k]) for k in range(3)], -1)  # noqa: E731

    def rel(a, b):
        c, s = np.cos(a[:, 2]), np.sin(a[:, 2])
        d = b - a
        return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]], -1)

    q = q.astype(np.float64)
    return rel(at(q - h), at(q)), rel(at(q), at(q + h))


def test_in_graph_preprocessing_matches_numpy_and_reference(sena):
    episode, cfg, clock = sena
    got = jax.jit(preprocess_jax, static_argnames="cfg")(
        jax.device_put(episode.device_streams()), jnp.asarray(clock), cfg)
    host = preprocess_numpy(episode, clock, cfg)

    np.testing.assert_array_equal(np.asarray(got.weight), host.weight)
    assert 0.85 < host.weight.mean() < 1.0  # the recording's dropouts are flagged, not more
    for name in ("past", "target"):
        np.testing.assert_allclose(np.asarray(getattr(got, name)), getattr(host, name),
                                   atol=2e-5, err_msg=name)
    past, future = reference_motions(clock, cfg.horizon_s)
    np.testing.assert_allclose(host.past, past, atol=2e-4)
    np.testing.assert_allclose(host.target, future, atol=2e-4)

    grid = np.asarray(got.grid)
    assert grid.shape == host.grid.shape == (len(clock),) + cfg.grid_shape
    assert set(np.unique(grid)) <= {0.0, 1.0} and host.grid.sum() > 50 * len(clock)
    # voxelize follows IEEE float32 division like numpy: the grids agree exactly
    np.testing.assert_array_equal(grid, host.grid)


def test_demo_smoke(tmp_path, capsys):
    out = tmp_path / "numbers.json"
    plot = tmp_path / "plot.png"
    summary = main(["--task", "lidar", "--steps", "5", "--batch-size", "8", "--json", str(out),
                    "--plot", str(plot)])
    printed = capsys.readouterr().out
    if jax.default_backend() == "cpu":
        assert "n/a (CPU)" in printed
    for text in ("learn robot motion from LiDAR", "samples/s", "steps/s", "preprocessing ms/step",
                 "device utilisation", "final train loss",
                 "in-graph (jax_robocache)", "host numpy per batch"):
        assert text in printed
    numbers = json.loads(out.read_text())
    assert numbers["steps"] == 5 and numbers["task"] == "lidar"
    runs = summary["results"]
    assert [r["name"] for r in runs] == ["in-graph (jax_robocache)", "host numpy per batch"]
    for r in runs:
        assert len(r["losses"]) == 5 and np.all(np.isfinite(r["losses"]))
        assert r["steps_per_s"] > 0 and r["preprocess_ms_per_step"] > 0
        assert r["samples_per_s"] == pytest.approx(8 * r["steps_per_s"])
    # identical batches and initial weights: the two runs learn the same thing
    np.testing.assert_allclose(runs[0]["losses"], runs[1]["losses"], rtol=0.05)
    pytest.importorskip("matplotlib")
    assert plot.stat().st_size > 10_000


def test_demo_on_an_exported_ros2_bag(sena, tmp_path, capsys):
    pytest.importorskip("rosbags")
    from jax_robocache.demo.episode import load_bag

    bag = tmp_path / "sena_bag"
    main(["--export-sena-bag", str(bag)])
    assert "--bag" in capsys.readouterr().out
    episode, cfg, clock = sena
    from_bag = load_bag(bag, "/scan", "/odom")
    assert from_bag.odom_kind == "pose"
    np.testing.assert_array_equal(from_bag.scan_ranges, episode.scan_ranges)
    np.testing.assert_allclose(from_bag.scan_times, episode.scan_times, atol=1e-6)
    np.testing.assert_allclose(from_bag.beam_cos, episode.beam_cos, atol=1e-6)

    bag_cfg = TaskConfig.for_episode(from_bag)
    a = preprocess_numpy(episode, clock, cfg)
    b = preprocess_numpy(from_bag, clock, bag_cfg)
    np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_allclose(a.target, b.target, atol=1e-4)
    assert np.mean(a.grid != b.grid) < 1e-3

    summary = main(["--bag", str(bag), "--steps", "3", "--batch-size", "4", "--variants",
                    "in-graph", "--no-plot"])
    assert "ROS 2 bag" in summary["data"] and len(summary["results"]) == 1
    assert summary["task"] == "lidar"  # --bag selects the lidar task


def test_eval_blocks():
    held = eval_blocks(578, 10.0)
    assert held.sum() == 100 and held[:200].sum() == 0
    assert held[200:250].all()
    short = eval_blocks(30, 10.0)
    assert 0 < short.sum() < 30
    with pytest.raises(ValueError, match="too few"):
        eval_blocks(1, 10.0)
