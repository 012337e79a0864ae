"""read_bags: bags written with rosbags (the real recording and synthetic multi-rate topics),
one bag per episode, read back exactly with each topic on its own clock."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags")

import io_data  # noqa: E402
from test_io import T, header, write_bag as _write_bag  # noqa: E402

from jax_robocache.demo.synthetic import multirate_episodes  # noqa: E402
from jax_robocache.io import BagError, read_bags  # noqa: E402


def write_bag(path: Path, messages, storage: str = "mcap") -> Path:
    """messages: (log_ns, topic, msgtype, msg), written in log-time order."""
    return _write_bag(path, sorted(messages, key=lambda m: m[0]), storage)


def laser_scan(ns, ranges):
    inc = np.pi / 360
    return T["sensor_msgs/msg/LaserScan"](
        header=header(ns, "laser"), angle_min=-np.pi / 2,
        angle_max=-np.pi / 2 + inc * (len(ranges) - 1), angle_increment=inc, time_increment=0.0,
        scan_time=0.0, range_min=0.02, range_max=80.0, ranges=np.asarray(ranges, np.float32),
        intensities=np.zeros(0, np.float32))


def wrench(ns, f):
    v = T["geometry_msgs/msg/Vector3"]
    return T["geometry_msgs/msg/WrenchStamped"](
        header=header(ns), wrench=T["geometry_msgs/msg/Wrench"](
            force=v(x=float(f[0]), y=float(f[1]), z=float(f[2])),
            torque=v(x=float(f[3]), y=float(f[4]), z=float(f[5]))))


def joint_state(ns, q):
    names = [f"j{k}" for k in range(len(q))]
    return T["sensor_msgs/msg/JointState"](
        header=header(ns), name=names, position=np.asarray(q, np.float64),
        velocity=np.zeros(len(q)), effort=np.zeros(len(q)))


def epoch_ns(t: np.ndarray) -> np.ndarray:
    sec = np.floor(t)
    return sec.astype(np.int64) * 10**9 + np.round((t - sec) * 1e9).astype(np.int64)


def test_sena_two_bags_two_episodes(tmp_path):
    raw = io_data.sena_raw()
    ns = epoch_ns(raw["scan_t"])
    cuts = ((0, 100), (100, 224))
    for k, (a, b) in enumerate(cuts):
        write_bag(tmp_path / f"run_{k}", [(int(ns[i]), "/scan", "sensor_msgs/msg/LaserScan",
                                           laser_scan(int(ns[i]), raw["ranges"][i]))
                                          for i in range(a, b)],
                  storage="mcap" if k == 0 else "sqlite3")
    src = read_bags(tmp_path)
    assert src.format == "ros2 bags" and src.fps is None
    np.testing.assert_array_equal(src.episodes, [0, 1])
    s = src["/scan"]
    np.testing.assert_array_equal(s.offsets, [0, 100, 224])
    assert s.times.dtype == np.int64
    np.testing.assert_array_equal(s.times, ns)  # epoch ns exactly as stamped
    np.testing.assert_array_equal(np.asarray(s.values), raw["ranges"])
    assert s.names[:2] == ("ranges[0]", "ranges[1]") and s.shape == (361,)
    assert src.metadata["origins_ns"] == [int(ns[0]), int(ns[100])]
    assert src.diagnostics.ok  # no nominal rate: stamps are only checked for order


def test_multirate_topics_keep_their_clocks(tmp_path):
    eps = multirate_episodes(3, 0.4, joints_hz=50.0, force_hz=200.0, num_joints=3, seed=11,
                             camera_dim=2)
    base = 1_700_000_000 * 10**9
    want = []
    for e in range(3):
        nj, nf = int(eps["joints"].lengths[e]), int(eps["force"].lengths[e])
        tj = base + e * 10**10 + np.round(np.asarray(eps["joints"].times[e, :nj],
                                                     np.float64) * 1e9).astype(np.int64)
        tf = base + e * 10**10 + np.round(np.asarray(eps["force"].times[e, :nf],
                                                     np.float64) * 1e9).astype(np.int64)
        q = np.asarray(eps["joints"].values[e, :nj], np.float64)
        f = np.asarray(eps["force"].values[e, :nf], np.float64)
        msgs = [(int(t), "/joint_states", "sensor_msgs/msg/JointState", joint_state(int(t), x))
                for t, x in zip(tj, q)]
        msgs += [(int(t), "/wrench", "geometry_msgs/msg/WrenchStamped", wrench(int(t), x))
                 for t, x in zip(tf, f)]
        write_bag(tmp_path / f"ep{e}", msgs)
        want.append((tj, q, tf, f))
    src = read_bags([tmp_path / "ep2", tmp_path / "ep0"], topics=["/wrench", "/joint_states"],
                    rates={"/wrench": 200.0})
    assert list(src.streams) == ["/wrench", "/joint_states"]
    for e, k in enumerate((2, 0)):
        tj, q, tf, f = want[k]
        w, j = src["/wrench"], src["/joint_states"]
        a, b = w.offsets[e], w.offsets[e + 1]
        np.testing.assert_array_equal(w.times[a:b], tf)
        np.testing.assert_array_equal(w.episode(e), f)
        a, b = j.offsets[e], j.offsets[e + 1]
        np.testing.assert_array_equal(j.times[a:b], tj)
        np.testing.assert_array_equal(j.episode(e)[:, :3], q)  # positions, then velocity, effort
    # one topic into a store: its times are measured from each bag's origin (the earliest
    # stamp of both topics), as the bag reader's own relative times, not from its first stamp
    store = src.to_store(["/wrench"])
    np.testing.assert_array_equal(store.origins, src.metadata["origins_ns"])
    o = np.asarray(store["/wrench"].offsets)
    for e, k in enumerate((2, 0)):
        tj, _, tf, _ = want[k]
        origin = min(tj[0], tf[0])
        assert src.metadata["origins_ns"][e] == origin
        np.testing.assert_array_equal(np.asarray(store["/wrench"].times)[o[e]:o[e + 1]],
                                      ((tf - origin) * 1e-9).astype(np.float32))
    # the synthetic clock has dropouts and gaps: reported for the topic with a nominal rate
    wrench_reports = [r for r in src.diagnostics.reports if r.clock == "/wrench"]
    assert len(wrench_reports) == 2 and any(r.gap.size for r in wrench_reports)
    for r in wrench_reports:
        t = src["/wrench"].times[src["/wrench"].offsets[list(src.episodes).index(r.episode)]:][
            :r.samples]
        steps = np.diff(t) * 1e-9
        np.testing.assert_array_equal(r.gap, 1 + np.flatnonzero((steps > 0.005 + 1e-4)
                                                                & (steps >= 0.0075)))


def test_missing_topic_and_bad_paths(tmp_path):
    write_bag(tmp_path / "a", [(10**9, "/w", "geometry_msgs/msg/WrenchStamped",
                                wrench(10**9, np.arange(6)))])
    write_bag(tmp_path / "b", [(10**9, "/v", "geometry_msgs/msg/WrenchStamped",
                                wrench(10**9, np.arange(6)))])
    with pytest.raises(BagError, match=r"\['/w'\].*bag .*b"):
        read_bags(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_bags(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="neither a bag nor a directory of bags"):
        read_bags(tmp_path / "empty")


def test_changed_columns_are_named(tmp_path):
    raw = io_data.sena_raw()
    write_bag(tmp_path / "a", [(10**9, "/scan", "sensor_msgs/msg/LaserScan",
                                laser_scan(10**9, raw["ranges"][0]))])
    write_bag(tmp_path / "b", [(10**9, "/scan", "sensor_msgs/msg/LaserScan",
                                laser_scan(10**9, raw["ranges"][0][:100]))])
    with pytest.raises(BagError, match=r"topic '/scan' in bag .*b has columns"):
        read_bags(tmp_path)


def test_truncated_bag_is_named(tmp_path):
    raw = io_data.sena_raw()
    for k in range(2):
        write_bag(tmp_path / f"r{k}", [(10**9 + i, "/scan", "sensor_msgs/msg/LaserScan",
                                        laser_scan(10**9 + i, raw["ranges"][i]))
                                       for i in range(20)])
    mcap = next((tmp_path / "r1").glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2])
    with pytest.raises(BagError, match="r1"):
        read_bags(tmp_path)
    shutil.rmtree(tmp_path / "r1")
    assert read_bags(tmp_path).num_episodes == 1
