"""DatasetSource: what to_store hands EpisodeStore.from_flat, and reads bounded by the slice."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyarrow")

import io_data  # noqa: E402
import lerobot_writer  # noqa: E402

from jax_robocache.io import read_lerobot  # noqa: E402
from jax_robocache.io import _parquet  # noqa: E402


def _irregular(tmp_path):
    episodes = io_data.regular_episodes(lengths=(6, 5), fps=10.0, seed=3)
    t = np.array([0.0, 0.1, 0.1, np.nan, 0.05, 0.5], np.float32)  # dup, NaN, backward, gap
    episodes[0]["timestamp"] = t
    lerobot_writer.write_v30(tmp_path, episodes, fps=10)
    return episodes, read_lerobot(tmp_path)


def test_flat_hands_sorted_finite_clocks(tmp_path):
    episodes, src = _irregular(tmp_path)
    s = src["action"]
    np.testing.assert_array_equal(np.flatnonzero(~s.valid), [2, 3, 4])
    t = s.sorted_times()
    assert np.isfinite(t).all() and t.dtype == np.float32
    np.testing.assert_array_equal(t[:6], np.float32([0.0, 0.1, 0.1, 0.1, 0.1, 0.5]))
    np.testing.assert_array_equal(t[6:], s.times[6:])
    kw = src.flat(["action"])
    assert set(kw) == {"values", "offsets", "times", "fps", "valid", "origins"}
    assert kw["fps"] is None  # every stream has a clock
    np.testing.assert_array_equal(kw["times"]["action"], t)
    np.testing.assert_array_equal(kw["offsets"]["action"], [0, 6, 11])
    with pytest.raises(KeyError, match="wrench"):
        src.flat(["wrench"])


def test_reads_touch_only_the_row_groups_of_the_slice(tmp_path, monkeypatch):
    """What lets a dataset larger than memory stream: a slice reads its row groups only."""
    episodes = io_data.regular_episodes(lengths=(50, 50, 50), seed=8)
    lerobot_writer.write_v30(tmp_path, episodes, fps=30, episodes_per_file=3, row_group_size=10)
    src = read_lerobot(tmp_path)
    reads = []
    real = _parquet.ParquetColumn._group

    def spy(self, pf, g):
        reads.append(g)
        return real(self, pf, g)

    monkeypatch.setattr(_parquet.ParquetColumn, "_group", spy)
    v = src["observation.state"].values
    want = np.concatenate([e["observation.state"] for e in episodes])
    np.testing.assert_array_equal(v[35:62], want[35:62])
    assert reads == [3, 4, 5, 6]
    reads.clear()
    for a in range(0, 150, 25):  # consecutive chunks, as from_flat reads
        np.testing.assert_array_equal(v[a:a + 25], want[a:a + 25])
    assert sorted(set(reads)) == list(range(15))
    assert len(reads) <= 15 + 6  # each group read about once (cached across chunk borders)


def test_to_store_round_trip(tmp_path):
    episodes, src = _irregular(tmp_path)
    store = src.to_store(chunk_bytes=64)
    for name, s in src.streams.items():
        got = store[name]
        np.testing.assert_array_equal(np.asarray(got.offsets), s.offsets)
        vals = np.asarray(got.values)
        np.testing.assert_array_equal(vals.reshape(np.asarray(s.values).shape),
                                      np.asarray(s.values).astype(vals.dtype))
        np.testing.assert_array_equal(np.asarray(got.valid), s.valid)


def test_to_store_epoch_clock_and_fps(tmp_path):
    zarr = pytest.importorskip("zarr")
    from jax_robocache.io import read_zarr

    raw = io_data.sena_raw()
    root = zarr.open_group(tmp_path / "s.zarr", mode="w", zarr_format=2)
    ends = np.array([100, 224], np.int64)
    root.require_group("meta").create_array("episode_ends", shape=(2,), dtype=np.int64)
    root["meta/episode_ends"][:] = ends
    data = root.require_group("data")
    for k, x in (("timestamp", raw["scan_t"]), ("scan", raw["ranges"])):
        data.create_array(k, shape=x.shape, dtype=x.dtype, chunks=(32,) + x.shape[1:])[:] = x
    store = read_zarr(tmp_path / "s.zarr").to_store(chunk_bytes=4096)
    t = np.asarray(store["scan"].times)
    want = np.concatenate([raw["scan_t"][:100] - raw["scan_t"][0],
                           raw["scan_t"][100:] - raw["scan_t"][100]])
    # epoch float64 seconds made episode-relative before any float32 rounding
    np.testing.assert_array_equal(t, want.astype(t.dtype))
    np.testing.assert_array_equal(np.asarray(store["scan"].values), raw["ranges"])

    eps = io_data.regular_episodes(lengths=(7, 3))
    del root
    src = read_zarr(_replay(tmp_path / "f.zarr", eps), fps=30)
    store = src.to_store()
    np.testing.assert_array_equal(np.asarray(store["action"].values),
                                  np.concatenate([e["action"] for e in eps]))


def _replay(path, eps):
    import zarr

    root = zarr.open_group(path, mode="w")
    ends = np.cumsum([len(e["action"]) for e in eps]).astype(np.int64)
    root.require_group("meta").create_array("episode_ends", shape=ends.shape, dtype=np.int64)
    root["meta/episode_ends"][:] = ends
    x = np.concatenate([e["action"] for e in eps])
    root.require_group("data").create_array("action", shape=x.shape, dtype=x.dtype)[:] = x
    return path
