"""read_lerobot: v3.0 and v2.1 datasets written with pyarrow in LeRobot's layout, read back."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

pytest.importorskip("pyarrow")

import io_data  # noqa: E402
import lerobot_writer  # noqa: E402
from timestamp_reference import loop_report  # noqa: E402

from jax_robocache.io import DatasetError, LayoutError, read_lerobot  # noqa: E402
from jax_robocache.io.diagnostics import CATEGORIES  # noqa: E402

WRITERS = {"v3.0": lerobot_writer.write_v30, "v2.1": lerobot_writer.write_v21}


def _expect_stream(src, key, episodes, order):
    s = src[key]
    for e, ep in enumerate(order):
        want = np.asarray(episodes[ep][key])
        got = s.episode(e)
        assert got.dtype == want.dtype, (key, got.dtype, want.dtype)
        np.testing.assert_array_equal(got, want.reshape(got.shape))
    # also through one flat slice that crosses episodes and files
    flat = np.asarray(s.values)
    want = np.concatenate([np.asarray(episodes[ep][key]).reshape(len(episodes[ep][key]), -1)
                           for ep in order])
    np.testing.assert_array_equal(flat, want)


@pytest.mark.parametrize("version", sorted(WRITERS))
def test_sena_round_trip(tmp_path, version):
    episodes = io_data.sena_episodes()
    WRITERS[version](tmp_path, episodes, fps=4)
    src = read_lerobot(tmp_path)
    assert src.format == f"lerobot {version}"
    assert src.fps == 4.0
    assert sorted(src.streams) == ["action", "observation.scan", "task_index"]
    np.testing.assert_array_equal(src.episodes, [0, 1])
    for key in ("observation.scan", "action"):
        _expect_stream(src, key, episodes, [0, 1])
        s = src[key]
        np.testing.assert_array_equal(s.offsets, [0, 100, 224])
        np.testing.assert_array_equal(s.times, np.concatenate([ep["timestamp"]
                                                               for ep in episodes]))
        assert s.times.dtype == np.float32
    assert src["observation.scan"].names == [f"observation.scan_{i}" for i in range(361)]
    # the dataset's own stats: v3.0 stats.json exactly as written; v2.1 the per-episode
    # stats combined (numpy float64 over every frame, to rounding), stats.json ignored
    want = lerobot_writer.numpy_stats(episodes, src.metadata["info"]["features"])
    for k, stats in want.items():
        for stat, v in stats.items():
            if version == "v3.0" or stat == "count":
                np.testing.assert_array_equal(src.stats[k][stat], np.asarray(v))
            else:
                np.testing.assert_allclose(src.stats[k][stat], np.asarray(v), rtol=1e-12,
                                           atol=1e-12)
        assert src.stats[k]["count"].dtype.kind == "i"
    assert src.metadata["tasks"] == {0: "pick", 1: "place"}


def test_sena_diagnostics_match_a_loop(tmp_path):
    """The real recording's irregular clock (0.2-0.65 s steps at a nominal 4 Hz)."""
    episodes = io_data.sena_episodes()
    lerobot_writer.write_v30(tmp_path, episodes, fps=4)
    src = read_lerobot(tmp_path, tolerance_s=0.02)
    assert not src.diagnostics.ok
    for rep, ep in zip(src.diagnostics.reports, episodes):
        want = loop_report(ep["timestamp"], 0.25, 0.02)
        for c in CATEGORIES:
            np.testing.assert_array_equal(getattr(rep, c), want[c], err_msg=c)
        assert rep.samples == len(ep["timestamp"])
    assert src.diagnostics.counts()["gap"] > 0 and src.diagnostics.counts()["jitter"] > 0
    # gaps and jitter leave samples valid by default
    assert src["action"].valid is None
    assert "irregular" in str(src.diagnostics)


@pytest.mark.parametrize("version", sorted(WRITERS))
def test_synthetic_select_keys_and_episodes(tmp_path, version):
    episodes = io_data.synthetic_episodes(num=5, seed=3)
    WRITERS[version](tmp_path, episodes, fps=50)
    order = [3, 0, 4]
    src = read_lerobot(tmp_path, keys=["action"], episodes=order)
    assert list(src.streams) == ["action"]
    np.testing.assert_array_equal(src.episodes, order)
    s = src["action"]
    assert s.shape == (2, 3) and s.values.shape[1] == 6 and s.dtype == np.float64
    _expect_stream(src, "action", episodes, order)
    lengths = [len(episodes[e]["timestamp"]) for e in order]
    np.testing.assert_array_equal(s.offsets, np.concatenate([[0], np.cumsum(lengths)]))
    np.testing.assert_array_equal(s.times, np.concatenate([episodes[e]["timestamp"]
                                                           for e in order]))


def test_row_groups_and_slices_cross_files(tmp_path):
    """Small row groups, many episodes per file: any slice equals the numpy concatenation."""
    episodes = io_data.regular_episodes(lengths=(40, 1, 25, 60, 7), fps=30.0, seed=5)
    lerobot_writer.write_v30(tmp_path, episodes, fps=30, episodes_per_file=2, row_group_size=6)
    src = read_lerobot(tmp_path, episodes=[4, 1, 2, 0])
    want = np.concatenate([episodes[e]["observation.state"] for e in (4, 1, 2, 0)])
    v = src["observation.state"].values
    rng = np.random.default_rng(0)
    for _ in range(30):
        a, b = sorted(rng.integers(0, len(want) + 1, 2))
        np.testing.assert_array_equal(v[a:b], want[a:b])
    np.testing.assert_array_equal(v[-1], want[-1])
    assert src.diagnostics.ok


def test_irregular_timestamps_masks_not_errors(tmp_path):
    fps = 30.0
    episodes = io_data.regular_episodes(lengths=(30, 31), fps=fps, seed=1)
    frames = list(range(0, 5)) + [4] + list(range(5, 11)) + [None] + list(range(11, 20)) \
        + list(range(21, 30))      # 5: duplicate, 12: backward, 22: frame 20 missing (gap)
    t = np.array([10 / fps - 0.01 if k is None else k / fps for k in frames])
    t[26] += 0.004                 # a late frame: jitter at 26 and 27
    episodes[1]["timestamp"] = t.astype(np.float32)
    lerobot_writer.write_v30(tmp_path, episodes, fps=30)
    src = read_lerobot(tmp_path)
    ok, bad = src.diagnostics.reports
    assert ok.ok and not bad.ok
    np.testing.assert_array_equal(bad.duplicate, [5])
    np.testing.assert_array_equal(bad.backward, [12])
    np.testing.assert_array_equal(bad.gap, [22])
    np.testing.assert_allclose(bad.gap_seconds, [2 / fps], atol=1e-6)
    np.testing.assert_array_equal(bad.jitter, [26, 27])
    assert bad.nan.size == 0
    valid = src["action"].valid
    np.testing.assert_array_equal(np.flatnonzero(~valid), [30 + 5, 30 + 12])
    times = src["action"].sorted_times()
    assert np.all(np.diff(times[30:]) >= 0)
    np.testing.assert_array_equal(times[valid], src["action"].times[valid])
    # more categories in the mask on request
    src2 = read_lerobot(tmp_path, invalid=("duplicate", "backward", "gap", "jitter"))
    np.testing.assert_array_equal(np.flatnonzero(~src2["action"].valid) - 30,
                                  [5, 12, 22, 26, 27])


def test_video_frame_index_v30(tmp_path):
    episodes = io_data.regular_episodes(lengths=(10, 4, 6), fps=10.0, seed=2)
    lerobot_writer.write_v30(tmp_path, episodes, fps=10, video_keys=["observation.images.top"],
                             episodes_per_file=2)
    src = read_lerobot(tmp_path, episodes=[1, 2])
    fr = src.frames["observation.images.top"]
    assert fr.kind == "video"
    root = str(tmp_path)
    assert fr.files == (f"{root}/videos/observation.images.top/chunk-000/file-000.mp4",
                        f"{root}/videos/observation.images.top/chunk-000/file-001.mp4")
    np.testing.assert_array_equal(fr.file, [0] * 4 + [1] * 6)
    # episode 1 follows episode 0 (1 s) in file-000; episode 2 starts file-001
    np.testing.assert_array_equal(fr.frame, np.concatenate([10 + np.arange(4), np.arange(6)]))
    np.testing.assert_allclose(fr.file_time, fr.frame / 10.0, atol=1e-6)
    np.testing.assert_array_equal(fr.offsets, [0, 4, 10])
    # a NaN stamp: that frame row has no frame number (-1), no cast warning
    episodes[2]["timestamp"] = episodes[2]["timestamp"].copy()
    episodes[2]["timestamp"][3] = np.nan
    lerobot_writer.write_v30(tmp_path / "nan", episodes, fps=10,
                             video_keys=["observation.images.top"], episodes_per_file=2)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fr = read_lerobot(tmp_path / "nan", episodes=[2]).frames["observation.images.top"]
    np.testing.assert_array_equal(fr.frame, [0, 1, 2, -1, 4, 5])


def test_video_frame_index_v21(tmp_path):
    episodes = io_data.regular_episodes(lengths=(3, 5, 2), fps=15.0, seed=2)
    lerobot_writer.write_v21(tmp_path, episodes, fps=15, video_keys=["cam"], chunks_size=2)
    src = read_lerobot(tmp_path, keys=["cam", "action"])
    fr = src.frames["cam"]
    assert list(src.streams) == ["action"]
    assert [f.split(str(tmp_path))[1] for f in fr.files] == [
        "/videos/chunk-000/cam/episode_000000.mp4", "/videos/chunk-000/cam/episode_000001.mp4",
        "/videos/chunk-001/cam/episode_000002.mp4"]
    np.testing.assert_array_equal(fr.frame, [0, 1, 2, 0, 1, 2, 3, 4, 0, 1])


def test_v21_stats_json_is_ignored_as_lerobot_does(tmp_path):
    episodes = io_data.regular_episodes(lengths=(5, 8), seed=4)
    lerobot_writer.write_v21(tmp_path, episodes, stale_stats_json=True)
    src = read_lerobot(tmp_path)
    x = np.concatenate([e["action"] for e in episodes]).astype(np.float64)
    np.testing.assert_allclose(src.stats["action"]["mean"], x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(src.stats["action"]["std"], x.std(0), rtol=1e-12)
    np.testing.assert_array_equal(src.stats["action"]["count"], [13])


def test_episode_stats(tmp_path):
    episodes = io_data.regular_episodes(lengths=(5, 8), seed=4)
    for version, write in WRITERS.items():
        root = tmp_path / version
        write(root, episodes)
        src = read_lerobot(root, episodes=[1], episode_stats=True)
        got = src.metadata["episode_stats"]
        assert list(got) == [1]
        np.testing.assert_array_equal(got[1]["action"]["mean"],
                                      episodes[1]["action"].astype(np.float64).mean(0))


# --- errors ------------------------------------------------------------------------------------

def test_missing_key_and_episode(tmp_path):
    lerobot_writer.write_v30(tmp_path, io_data.regular_episodes(), fps=30)
    with pytest.raises(KeyError, match=r"observation\.wrench.*observation\.state"):
        read_lerobot(tmp_path, keys=["observation.wrench"])
    with pytest.raises(KeyError, match=r"episodes \[9\]"):
        read_lerobot(tmp_path, episodes=[0, 9])
    with pytest.raises(ValueError, match="clock"):
        read_lerobot(tmp_path, keys=["timestamp"])


def test_wrong_layout(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_lerobot(tmp_path / "nope")
    with pytest.raises(LayoutError, match="info.json"):
        read_lerobot(tmp_path)
    lerobot_writer.write_v30(tmp_path, io_data.regular_episodes(), fps=30)
    info = json.loads((tmp_path / "meta/info.json").read_text())
    info["codebase_version"] = "v1.6"
    (tmp_path / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(LayoutError, match="v1.6"):
        read_lerobot(tmp_path)


def test_corrupt_and_missing_files_are_named(tmp_path):
    lerobot_writer.write_v30(tmp_path, io_data.regular_episodes(), fps=30, episodes_per_file=2)
    data = tmp_path / "data/chunk-000/file-001.parquet"
    raw = data.read_bytes()
    data.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match="file-001.parquet"):
        read_lerobot(tmp_path)
    read_lerobot(tmp_path, episodes=[0, 1])  # the intact file alone still reads
    data.unlink()
    with pytest.raises(DatasetError, match="file-001.parquet is missing"):
        read_lerobot(tmp_path, episodes=[3])
    (tmp_path / "meta/info.json").write_text("{not json")
    with pytest.raises(DatasetError, match="info.json"):
        read_lerobot(tmp_path)


def test_dataset_rewritten_at_its_path(tmp_path):
    """A dataset converted again into the same folder reads the new files; a source opened
    before the rewrite refuses to read through the old handles."""
    first = io_data.regular_episodes(lengths=(5, 6), seed=1)
    lerobot_writer.write_v30(tmp_path, first, fps=30)
    read = read_lerobot(tmp_path, keys=["action"])
    np.testing.assert_array_equal(read["action"].episode(0), first[0]["action"])  # kept open
    old = read_lerobot(tmp_path, keys=["action"])  # opened, nothing read yet
    second = io_data.regular_episodes(lengths=(5, 6), seed=2)
    for f in tmp_path.rglob("*.parquet"):
        f.unlink()
    lerobot_writer.write_v30(tmp_path, second, fps=30, row_group_size=3)
    with read_lerobot(tmp_path, keys=["action"]) as new:
        _expect_stream(new, "action", second, [0, 1])
    with pytest.raises(DatasetError, match="changed .* open the dataset again"):
        np.asarray(old["action"].values)
    # rewritten in place (same inode, truncated and written again), through a kept handle
    third = io_data.regular_episodes(lengths=(5, 6), seed=3)
    kept = read_lerobot(tmp_path, keys=["action"])
    np.testing.assert_array_equal(kept["action"].episode(0), second[0]["action"])
    time.sleep(0.01)
    staging = tmp_path.parent / (tmp_path.name + "_third")
    lerobot_writer.write_v30(staging, third, fps=30, row_group_size=3)
    for f in staging.rglob("*.parquet"):
        target = tmp_path / f.relative_to(staging)
        with open(target, "r+b") as out:
            out.truncate(0)
            out.write(f.read_bytes())
        os.utime(target, ns=(time.time_ns(), time.time_ns()))
    with pytest.raises(DatasetError, match="changed .* open the dataset again"):
        kept["action"].episode(1)   # another row group: read through the kept handle


def test_rows_disagreeing_with_episode_table(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    lerobot_writer.write_v30(tmp_path, io_data.regular_episodes(lengths=(5, 6)), fps=30)
    path = tmp_path / "meta/episodes/chunk-000/file-000.parquet"
    t = pq.read_table(path)
    lengths = t.column("length").to_numpy().copy()
    lengths[1] += 1
    pq.write_table(t.set_column(t.schema.get_field_index("length"), "length",
                                pa.array(lengths)), path)
    with pytest.raises(DatasetError, match="holds 6 rows of episode 1, the episode table says 7"):
        read_lerobot(tmp_path)


def test_shape_disagreeing_with_info_is_named_on_read(tmp_path):
    lerobot_writer.write_v21(tmp_path, io_data.regular_episodes(lengths=(5, 6)), fps=30)
    info = json.loads((tmp_path / "meta/info.json").read_text())
    info["features"]["action"]["shape"] = [5]
    (tmp_path / "meta/info.json").write_text(json.dumps(info))
    src = read_lerobot(tmp_path)
    with pytest.raises(DatasetError, match=r"episode_000000.parquet column 'action'.*5 per row"):
        np.asarray(src["action"].values)


def test_image_features_index_parquet_rows(tmp_path):
    episodes = io_data.regular_episodes(lengths=(3, 4, 2), fps=5.0, seed=6)
    for e, ep in enumerate(episodes):
        ep["observation.image"] = [f"png-{e}-{k}".encode() for k in range(len(ep["timestamp"]))]
    lerobot_writer.write_v30(tmp_path, episodes, fps=5, episodes_per_file=2)
    src = read_lerobot(tmp_path, episodes=[2, 1])
    assert "observation.image" not in src.streams
    fr = src.frames["observation.image"]
    assert fr.kind == "image"
    assert [f.rsplit("/", 1)[1] for f in fr.files] == ["file-001.parquet", "file-000.parquet"]
    np.testing.assert_array_equal(fr.file, [0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(fr.frame, [0, 1, 3, 4, 5, 6])  # rows inside each file
    import pyarrow.parquet as pq

    for i in range(6):
        col = pq.read_table(fr.files[fr.file[i]], columns=["observation.image"]).column(0)
        e, k = (2, i) if i < 2 else (1, i - 2)
        assert col[int(fr.frame[i])].as_py()["bytes"] == f"png-{e}-{k}".encode()


def test_default_order_is_ascending_episode_index(tmp_path):
    """LeRobot sorts episodes.jsonl by episode_index; a file listing them out of order
    (appended by hand, merged datasets) reads in that order too."""
    episodes = io_data.regular_episodes(lengths=(3, 4, 5), seed=6)
    lerobot_writer.write_v21(tmp_path, episodes)
    path = tmp_path / "meta/episodes.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[2], lines[0], lines[1]]) + "\n")
    src = read_lerobot(tmp_path)
    np.testing.assert_array_equal(src.episodes, [0, 1, 2])
    _expect_stream(src, "action", episodes, [0, 1, 2])
