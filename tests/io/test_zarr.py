"""read_zarr: replay buffers written with zarr in diffusion_policy's layout, read back exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

import io_data  # noqa: E402

from jax_robocache.io import DatasetError, LayoutError, read_zarr  # noqa: E402


def write_replay_buffer(store, episodes: list[dict[str, np.ndarray]], *, zarr_format=2,
                        chunk_rows=16):
    """diffusion_policy ReplayBuffer: data/<key> [N, ...] chunked along N, meta/episode_ends."""
    root = zarr.open_group(store=store, mode="w", zarr_format=zarr_format)
    data, meta = root.require_group("data"), root.require_group("meta")
    ends = np.cumsum([len(next(iter(ep.values()))) for ep in episodes]).astype(np.int64)
    meta.create_array("episode_ends", shape=ends.shape, dtype=np.int64, compressors=None)
    root["meta/episode_ends"][:] = ends
    for key in episodes[0]:
        x = np.concatenate([ep[key] for ep in episodes])
        arr = data.create_array(key, shape=x.shape, dtype=x.dtype,
                                chunks=(chunk_rows,) + x.shape[1:])
        arr[:] = x
    root.attrs["written_by"] = "test_zarr"
    return root


def _sena_buffer():
    raw = io_data.sena_raw()
    eps = []
    for a, b in ((0, 90), (90, 150), (150, 224)):
        eps.append({"timestamp": raw["scan_t"][a:b], "scan": raw["ranges"][a:b],
                    "odometry": raw["odo_inc"][a:b]})
    return eps


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_sena_round_trip_with_epoch_clock(tmp_path, zarr_format):
    eps = _sena_buffer()
    write_replay_buffer(tmp_path / "sena.zarr", eps, zarr_format=zarr_format)
    src = read_zarr(tmp_path / "sena.zarr")
    assert src.format == "zarr replay buffer"
    assert sorted(src.streams) == ["odometry", "scan"]
    np.testing.assert_array_equal(src.episodes, [0, 1, 2])
    for key in ("scan", "odometry"):
        s = src[key]
        np.testing.assert_array_equal(s.offsets, [0, 90, 150, 224])
        assert s.times.dtype == np.float64  # epoch seconds exactly as stored
        np.testing.assert_array_equal(s.times, np.concatenate([e["timestamp"] for e in eps]))
        for e, ep in enumerate(eps):
            got = s.episode(e)
            assert got.dtype == ep[key].dtype
            np.testing.assert_array_equal(got, ep[key])
    assert src.metadata["attrs"]["written_by"] == "test_zarr"
    rep = src.diagnostics.reports[1]
    assert rep.episode == 1 and rep.samples == 60 and rep.ok  # no nominal rate: order only


@pytest.mark.filterwarnings("ignore:Duplicate name")  # zarr rewrites group metadata in zips
def test_zip_store_and_selection(tmp_path):
    eps = io_data.synthetic_episodes(num=4, seed=7)
    for ep in eps:
        ep.pop("timestamp")
    path = tmp_path / "buf.zarr.zip"
    store = zarr.storage.ZipStore(path, mode="w")
    write_replay_buffer(store, eps)
    store.close()
    src = read_zarr(path, fps=50, keys=["action"], episodes=[2, 0])
    s = src["action"]
    assert s.times is None and src.fps == 50.0 and s.shape == (2, 3)
    np.testing.assert_array_equal(s.episode(0), eps[2]["action"])
    np.testing.assert_array_equal(s.episode(1), eps[0]["action"])
    flat = src.flat()
    assert flat["times"] is None and flat["fps"] == 50.0
    src.close()


def test_chunked_slices(tmp_path):
    eps = io_data.regular_episodes(lengths=(13, 1, 30, 9))
    write_replay_buffer(tmp_path / "b.zarr", [{k: v for k, v in e.items() if k != "timestamp"}
                                              for e in eps], chunk_rows=5)
    src = read_zarr(tmp_path / "b.zarr", fps=30, episodes=[3, 2, 1])
    want = np.concatenate([eps[e]["observation.state"] for e in (3, 2, 1)])
    v = src["observation.state"].values
    for a in range(0, len(want), 7):
        for b in (a, a + 1, a + 11, len(want)):
            np.testing.assert_array_equal(v[a:b], want[a:b])


def test_int64_ns_clock_with_rate_diagnostics(tmp_path):
    t = (1_700_000_000 * 10**9 + np.arange(20) * 20_000_000).astype(np.int64)  # 50 Hz
    t[7] = t[6]  # duplicate
    eps = [{"stamp_ns": t, "x": np.arange(20.0)[:, None]}]
    write_replay_buffer(tmp_path / "c.zarr", eps)
    src = read_zarr(tmp_path / "c.zarr", clock="stamp_ns", fps=50)
    assert src["x"].times.dtype == np.int64
    rep = src.diagnostics.reports[0]
    np.testing.assert_array_equal(rep.duplicate, [7])
    np.testing.assert_array_equal(rep.gap, [8])
    np.testing.assert_array_equal(np.flatnonzero(~src["x"].valid), [7])


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_zarr(tmp_path / "none.zarr")
    eps = io_data.regular_episodes(lengths=(5, 6))
    write_replay_buffer(tmp_path / "a.zarr", eps)
    with pytest.raises(KeyError, match=r"\['wrench'\].*observation.state"):
        read_zarr(tmp_path / "a.zarr", keys=["wrench"])
    with pytest.raises(KeyError, match=r"episodes \[2\]"):
        read_zarr(tmp_path / "a.zarr", episodes=[2])
    with pytest.raises(ValueError, match="fps"):
        read_zarr(tmp_path / "a.zarr", clock=None)
    # not a replay buffer
    g = zarr.open_group(tmp_path / "plain.zarr", mode="w")
    g.create_array("x", shape=(3,), dtype="f4")
    with pytest.raises(LayoutError, match="episode_ends"):
        read_zarr(tmp_path / "plain.zarr", fps=1)
    # episode_ends that disagree with the data
    r = zarr.open_group(tmp_path / "a.zarr", mode="r+")
    r["meta/episode_ends"][:] = [5, 12]
    with pytest.raises(DatasetError, match=r"a.zarr/data/timestamp has 11 rows.*ends at 12"):
        read_zarr(tmp_path / "a.zarr")


def test_corrupt_chunk_is_named_on_read(tmp_path):
    eps = io_data.regular_episodes(lengths=(20, 20))
    write_replay_buffer(tmp_path / "a.zarr", eps, chunk_rows=8)
    chunk = tmp_path / "a.zarr" / "data" / "action" / "1.0"
    assert chunk.is_file()
    chunk.write_bytes(b"garbage" * 10)
    src = read_zarr(tmp_path / "a.zarr")
    np.asarray(src["observation.state"].values)  # other arrays unaffected
    with pytest.raises(DatasetError, match=r"a\.zarr/data/action: cannot read rows"):
        np.asarray(src["action"].values)


def test_corrupt_metadata_is_named(tmp_path):
    write_replay_buffer(tmp_path / "a.zarr", io_data.regular_episodes(lengths=(4,)))
    meta = Path(tmp_path / "a.zarr" / "meta" / "episode_ends" / ".zarray")
    meta.write_text("{broken")
    with pytest.raises(DatasetError, match="episode_ends"):
        read_zarr(tmp_path / "a.zarr")


def test_empty_selection_refused(tmp_path):
    write_replay_buffer(tmp_path / "a.zarr", io_data.regular_episodes(lengths=(4,)))
    with pytest.raises(ValueError, match="no episode"):
        read_zarr(tmp_path / "a.zarr", episodes=[])


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("damage", ["codec", "corrupt"])
@pytest.mark.parametrize("zipped", [False, True])
def test_an_unreadable_array_stops_only_itself(tmp_path, zarr_format, damage, zipped):
    """UMI's images need imagecodecs' JPEG-XL codec: without it (or with corrupt metadata)
    the other keys still read, and asking for that array names it."""
    import json
    import shutil

    eps = io_data.regular_episodes(lengths=(6, 5))
    write_replay_buffer(tmp_path / "a.zarr", eps, zarr_format=zarr_format)
    meta = tmp_path / "a.zarr" / "data" / "action" / (".zarray" if zarr_format == 2
                                                      else "zarr.json")
    if damage == "corrupt":
        meta.write_text("{broken")
    elif zarr_format == 2:
        doc = json.loads(meta.read_text())
        doc["compressor"] = {"id": "imagecodecs_jpegxl", "level": 80}
        meta.write_text(json.dumps(doc))
    else:
        doc = json.loads(meta.read_text())
        doc["codecs"].append({"name": "imagecodecs_jpegxl", "configuration": {}})
        meta.write_text(json.dumps(doc))
    path = tmp_path / "a.zarr"
    if zipped:
        shutil.make_archive(str(tmp_path / "z"), "zip", path)
        path = tmp_path / "b.zarr.zip"
        (tmp_path / "z.zip").rename(path)
    with read_zarr(path, keys=["observation.state"]) as src:
        np.testing.assert_array_equal(src["observation.state"].episode(1),
                                      eps[1]["observation.state"])
    with pytest.raises(DatasetError, match=r"data/action: unreadable zarr metadata"):
        read_zarr(path)


def test_truncated_zip_store_is_named(tmp_path):
    path = tmp_path / "buf.zarr.zip"
    store = zarr.storage.ZipStore(path, mode="w")
    write_replay_buffer(store, io_data.regular_episodes(lengths=(4, 3)))
    store.close()
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match=r"buf\.zarr\.zip is not a readable zarr group"):
        read_zarr(path)
