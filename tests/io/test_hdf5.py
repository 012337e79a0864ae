"""read_hdf5: robomimic and ALOHA files written with h5py in their published layouts, read back."""

from __future__ import annotations

import json

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

import io_data  # noqa: E402

from jax_robocache.io import DatasetError, LayoutError, read_hdf5  # noqa: E402


def write_robomimic(path, demos: list[dict[str, np.ndarray]], *, masks=None):
    """robomimic: data/demo_<k>/{actions, rewards, dones, states, obs/<key>, next_obs/<key>}."""
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        total = 0
        for k, demo in enumerate(demos):
            g = data.create_group(f"demo_{k}")
            n = len(demo["actions"])
            for key, v in demo.items():
                g.create_dataset(key, data=v, chunks=True if np.ndim(v) > 0 else None)
            g.attrs["num_samples"] = n
            total += n
        data.attrs["total"] = total
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1,
                                             "env_kwargs": {"control_freq": 20}})
        for name, listed in (masks or {}).items():
            f.create_dataset(f"mask/{name}", data=np.array([f"demo_{k}".encode() for k in listed],
                                                           dtype="S"))


def _robomimic_demos(seed=0, num=5):
    rng = np.random.default_rng(seed)
    out = []
    for ep in io_data.synthetic_episodes(num=num, seed=seed):
        n = len(ep["timestamp"])
        out.append({"actions": ep["observation.state"][:, :7].astype(np.float64),
                    "rewards": rng.random(n), "dones": (np.arange(n) == n - 1).astype(np.int64),
                    "states": rng.normal(size=(n, 32)),
                    "obs/robot0_eef_pos": rng.normal(size=(n, 3)),
                    "obs/agentview_image": rng.integers(0, 255, (n, 4, 4, 3), dtype=np.uint8),
                    "next_obs/robot0_eef_pos": rng.normal(size=(n, 3))})
    return out


def test_robomimic_round_trip(tmp_path):
    demos = _robomimic_demos(num=12)  # demo_10, demo_11: numeric order, not lexicographic
    write_robomimic(tmp_path / "d.hdf5", demos, masks={"train": [0, 2, 11], "valid": [1]})
    src = read_hdf5(tmp_path / "d.hdf5", fps=20)
    assert src.format == "hdf5 robomimic" and src.fps == 20.0
    np.testing.assert_array_equal(src.episodes, np.arange(12))
    assert sorted(src.streams) == sorted(demos[0])
    for key in demos[0]:
        s = src[key]
        assert s.times is None and s.shape == demos[0][key].shape[1:]
        for e in range(12):
            got = s.episode(e)
            assert got.dtype == demos[e][key].dtype
            np.testing.assert_array_equal(got, demos[e][key])
    assert src["obs/agentview_image"].values.shape[1] == 48
    assert src.metadata["attrs"]["env_args"]["env_name"] == "Lift"
    assert src.metadata["filter_keys"] == ["train", "valid"]

    sub = read_hdf5(tmp_path / "d.hdf5", fps=20, filter_key="train", keys=["actions"])
    np.testing.assert_array_equal(sub.episodes, [0, 2, 11])
    np.testing.assert_array_equal(np.asarray(sub["actions"].values),
                                  np.concatenate([demos[k]["actions"] for k in (0, 2, 11)]))
    pick = read_hdf5(tmp_path / "d.hdf5", fps=20, episodes=[3, "demo_1"], keys=["states"])
    np.testing.assert_array_equal(pick["states"].episode(0), demos[3]["states"])
    np.testing.assert_array_equal(pick["states"].episode(1), demos[1]["states"])


def test_sena_as_robomimic(tmp_path):
    raw = io_data.sena_raw()
    demos = [{"actions": raw["odo_inc"][a:b], "obs/scan": raw["ranges"][a:b]}
             for a, b in ((0, 120), (120, 224))]
    write_robomimic(tmp_path / "sena.hdf5", demos)
    src = read_hdf5(tmp_path / "sena.hdf5", fps=4)
    np.testing.assert_array_equal(np.asarray(src["obs/scan"].values), raw["ranges"])
    np.testing.assert_array_equal(src["obs/scan"].offsets, [0, 120, 224])
    v = src["obs/scan"].values
    np.testing.assert_array_equal(v[100:140], raw["ranges"][100:140])  # across the two demos


def write_aloha(path, qpos, action, images, *, sim=False, compress=False):
    """ACT / ALOHA record_episodes.py: observations/{qpos, qvel, effort, images/<cam>}, action."""
    with h5py.File(path, "w", rdcc_nbytes=1024 ** 2 * 2) as root:
        root.attrs["sim"] = sim
        root.attrs["compress"] = compress
        obs = root.create_group("observations")
        obs.create_dataset("qpos", data=qpos)
        obs.create_dataset("qvel", data=np.diff(qpos, axis=0, prepend=qpos[:1]))
        obs.create_dataset("effort", data=-qpos)
        img = obs.create_group("images")
        for cam, frames in images.items():
            img.create_dataset(cam, data=frames, chunks=(1,) + frames.shape[1:])
        root.create_dataset("action", data=action)
        if compress:
            root.create_dataset("compress_len", data=np.full((len(images), len(qpos)), 7.0))


def _aloha_dir(tmp_path, num=3, compress=False):
    rng = np.random.default_rng(1)
    eps = io_data.synthetic_episodes(num=num, seed=5)
    written = []
    for i, ep in enumerate(eps):
        q = ep["observation.state"].astype(np.float64)
        a = q + 0.01
        imgs = {"cam_high": rng.integers(0, 255, (len(q), 6, 8, 3), dtype=np.uint8)}
        write_aloha(tmp_path / f"episode_{i}.hdf5", q, a, imgs, compress=compress)
        written.append((q, a, imgs))
    return written


def test_aloha_directory(tmp_path):
    written = _aloha_dir(tmp_path)
    src = read_hdf5(tmp_path, layout="aloha", fps=50)
    assert src.format == "hdf5 aloha"
    assert sorted(src.streams) == ["action", "observations/effort", "observations/images/cam_high",
                                   "observations/qpos", "observations/qvel"]
    for e, (q, a, imgs) in enumerate(written):
        np.testing.assert_array_equal(src["observations/qpos"].episode(e), q)
        np.testing.assert_array_equal(src["action"].episode(e), a)
        np.testing.assert_array_equal(src["observations/images/cam_high"].episode(e),
                                      imgs["cam_high"])
    sel = read_hdf5(tmp_path, layout="aloha", fps=50, episodes=[2, 0], keys=["action"])
    np.testing.assert_array_equal(sel.episodes, [2, 0])
    np.testing.assert_array_equal(sel["action"].episode(0), written[2][1])


def test_aloha_compressed_images_not_read(tmp_path):
    _aloha_dir(tmp_path, num=2, compress=True)
    src = read_hdf5(tmp_path, layout="aloha", fps=50)
    assert "observations/images/cam_high" not in src.streams
    assert "compress_len" not in src.streams  # not per step
    with pytest.raises(ValueError, match="compressed images"):
        read_hdf5(tmp_path, layout="aloha", fps=50, keys=["observations/images/cam_high"])


def test_errors(tmp_path):
    demos = _robomimic_demos(num=3)
    write_robomimic(tmp_path / "d.hdf5", demos)
    with pytest.raises(ValueError, match="fps"):
        read_hdf5(tmp_path / "d.hdf5")
    with pytest.raises(KeyError, match=r"obs/wrist.*actions"):
        read_hdf5(tmp_path / "d.hdf5", fps=20, keys=["obs/wrist"])
    with pytest.raises(KeyError, match=r"demo_7"):
        read_hdf5(tmp_path / "d.hdf5", fps=20, episodes=[7])
    with pytest.raises(KeyError, match="filter key 'train'"):
        read_hdf5(tmp_path / "d.hdf5", fps=20, filter_key="train")
    with pytest.raises(LayoutError, match="not an ALOHA episode"):
        read_hdf5(tmp_path / "d.hdf5", layout="aloha", fps=50)
    (tmp_path / "aloha").mkdir()
    _aloha_dir(tmp_path / "aloha", num=1)
    with pytest.raises(LayoutError, match="no 'data' group"):
        read_hdf5(tmp_path / "aloha" / "episode_0.hdf5", fps=20)
    with pytest.raises(FileNotFoundError):
        read_hdf5(tmp_path / "none.hdf5", fps=20)


def test_inconsistent_demo_is_named(tmp_path):
    demos = _robomimic_demos(num=3)
    demos[2]["obs/robot0_eef_pos"] = demos[2]["obs/robot0_eef_pos"][:, :2]
    write_robomimic(tmp_path / "d.hdf5", demos)
    with pytest.raises(DatasetError, match=r"data/demo_2/obs/robot0_eef_pos: rows \(2,\)"):
        read_hdf5(tmp_path / "d.hdf5", fps=20)
    demos = _robomimic_demos(num=2)
    demos[1]["rewards"] = demos[1]["rewards"][:-1]
    write_robomimic(tmp_path / "e.hdf5", demos)
    with pytest.raises(DatasetError, match=r"data/demo_1/rewards: shape .* steps"):
        read_hdf5(tmp_path / "e.hdf5", fps=20)


def test_corrupt_file_is_named(tmp_path):
    write_robomimic(tmp_path / "d.hdf5", _robomimic_demos(num=2))
    raw = (tmp_path / "d.hdf5").read_bytes()
    (tmp_path / "d.hdf5").write_bytes(raw[:200])
    with pytest.raises(DatasetError, match=r"d\.hdf5 is not a readable HDF5 file"):
        read_hdf5(tmp_path / "d.hdf5", fps=20)
