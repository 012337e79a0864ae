"""EpisodeStore: construction (per episode, flat, chunked from memmap / zarr / HDF5), exact
epoch timestamps, fps clocks, checks of bad input naming stream and episode, the device
memory refusal, and the pytree (jit, replication)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from jax_robocache import EpisodeStore, RaggedStream, Window, relative_timestamps, sample_windows
from jax_robocache.episodes import StoreError
from jax_robocache.episodes.sample_windows_cases import make_dataset, store_args
from jax_robocache.demo.episode import sena_path


@pytest.fixture
def rng():
    seed = 1234
    print(f"numpy seed {seed}")
    return np.random.default_rng(seed)


def flat_of(data):
    values = {n: np.concatenate(d["values"]) for n, d in data.items()}
    times = {n: np.concatenate(d["times"]) for n, d in data.items()}
    offsets = {n: np.concatenate([[0], np.cumsum([len(t) for t in d["times"]])])
               for n, d in data.items()}
    valid = {n: np.concatenate(d["valid"]) for n, d in data.items() if d["valid"] is not None}
    return values, times, offsets, valid


def assert_same_store(a: EpisodeStore, b: EpisodeStore):
    assert a.names == b.names and a.num_episodes == b.num_episodes
    for n in a.names:
        for x, y in zip(jax.tree.leaves(a[n]), jax.tree.leaves(b[n])):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(np.asarray(x).view(np.uint8),
                                          np.asarray(y).view(np.uint8))
        assert a[n].max_length == b[n].max_length


def test_from_episodes_layout(rng):
    data = make_dataset(rng, E=5)
    store = EpisodeStore.from_episodes(*store_args(data)[:2], valid=store_args(data)[2])
    assert store.num_episodes == 5 and store.names == tuple(sorted(data))
    for name, d in data.items():
        s = store[name]
        lengths = [len(t) for t in d["times"]]
        np.testing.assert_array_equal(np.asarray(s.offsets), np.concatenate([[0],
                                                                             np.cumsum(lengths)]))
        assert s.offsets.dtype == jnp.int32 and s.max_length == max(lengths)
        np.testing.assert_array_equal(np.asarray(s.values), np.concatenate(d["values"]))
        np.testing.assert_array_equal(np.asarray(s.times), np.concatenate(d["times"]))
        assert (s.valid is None) == (d["valid"] is None)
    assert store["emb"].values.dtype == jnp.bfloat16
    nbytes = store.nbytes()
    N, D = store["emb"].values.shape
    assert nbytes["emb"] == N * D * 2 + N * 4 + 6 * 4
    N, D = store["state"].values.shape
    assert nbytes["state"] == N * D * 4 + N * 4 + 6 * 4 + N  # + its mask


def test_from_flat_equals_from_episodes(rng):
    data = make_dataset(rng, E=4)
    a = EpisodeStore.from_episodes(*store_args(data)[:2], valid=store_args(data)[2])
    values, times, offsets, valid = flat_of(data)
    b = EpisodeStore.from_flat(values, offsets, times, valid=valid)
    assert_same_store(a, b)
    c = EpisodeStore.from_flat(values, offsets, times, valid=valid, chunk_bytes=100)
    assert_same_store(a, c)


def test_chunked_from_memmap_zarr_hdf5(tmp_path, rng):
    """Sliceable on-disk arrays, read in chunks much smaller than the arrays."""
    zarr = pytest.importorskip("zarr")
    h5py = pytest.importorskip("h5py")
    n, D = 3000, 7
    lengths = np.array([1000, 0, 1, 1999])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    values = rng.normal(size=(n, D)).astype(np.float32)
    stamps = np.concatenate([1_700_000_000_000_000_000 + 10**9 * e
                             + np.cumsum(rng.integers(1, 3_000_000, k)) for e, k in
                             enumerate(lengths)]).astype(np.int64)
    ref = EpisodeStore.from_flat({"x": values}, offsets, {"x": stamps})
    mm = np.lib.format.open_memmap(tmp_path / "v.npy", "w+", np.float32, (n, D))
    mm[:] = values
    z = zarr.open_array(str(tmp_path / "v.zarr"), mode="w", shape=(n, D), chunks=(256, D),
                        dtype="float32")
    z[:] = values
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f["v"] = values
        f["t"] = stamps
    with h5py.File(tmp_path / "v.h5", "r") as f:
        for source, t in ((mm, stamps), (z, stamps), (f["v"], f["t"])):
            got = EpisodeStore.from_flat({"x": source}, offsets, {"x": t}, chunk_bytes=4096)
            assert_same_store(ref, got)
            np.testing.assert_array_equal(got.origins, ref.origins)


def test_epoch_nanoseconds_made_relative_exactly(rng):
    """int64 ns stamps near 1.7e18: one origin per episode shared by its streams, equal to
    relative_timestamps on that episode's arrays."""
    E = 3
    base = 1_700_000_000_000_000_000
    a = [base + 10**11 * e + np.cumsum(rng.integers(1, 20_000_000, 30)) for e in range(E)]
    b = [base + 10**11 * e + 5_000_000 + np.cumsum(rng.integers(1, 2_000_000, 50))
         for e in range(E)]
    a[1] = a[1] + 10_000_000  # stream b starts first in episode 1
    store = EpisodeStore.from_episodes(
        {"a": [np.ones((30, 1), np.float32)] * E, "b": [np.ones((50, 2), np.float32)] * E},
        {"a": a, "b": b})
    assert store.origin_unit == "ns"
    for e in range(E):
        ra, rb, origin = relative_timestamps(a[e], b[e])
        assert store.origins[e] == origin == min(a[e][0], b[e][0])
        for name, want in (("a", ra), ("b", rb)):
            s = store[name]
            o = np.asarray(s.offsets)
            np.testing.assert_array_equal(np.asarray(s.times)[o[e]:o[e + 1]], want)


def test_integer_stamps_become_correctly_rounded_seconds(rng):
    """int64 differences in ns / us / ms / s -> the float64 nearest the exact quotient (one
    division), checked against fractions.Fraction; whole milliseconds included."""
    from fractions import Fraction

    from jax_robocache.streams.timestamps import integer_seconds
    for unit, per in (("ns", 10**9), ("us", 10**6), ("ms", 10**3), ("s", 1)):
        delta = np.concatenate([rng.integers(-2**52, 2**52, 2000),
                                np.arange(0, 10_000) * (per // 1000 if per >= 1000 else 1)])
        want = np.array([float(Fraction(int(d), per)) for d in delta])
        np.testing.assert_array_equal(integer_seconds(delta, unit), want)


def test_epoch_stream_that_float32_cannot_resolve_raises():
    """A 100 kHz stream starting 1000 s after its episode's origin (another stream's first
    stamp): float32 relative times would merge its samples, so the build raises; the same
    stream starting 1 s after the origin is kept exactly."""
    t0 = 1_700_000_000_000_000_000
    for late_s, fails in ((1000, True), (1, False)):
        tb = t0 + late_s * 10**9 + np.arange(5) * 10_000
        build = lambda: EpisodeStore.from_episodes(  # noqa: E731
            {"a": [np.zeros((1, 1), np.float32)], "b": [np.arange(5, dtype=np.float32)[:, None]]},
            {"a": [np.array([t0])], "b": [tb]})
        if fails:
            with pytest.raises(StoreError, match=r"times\['b'\] episode 0: relative to the "
                               r"episode's origin its stamps reach 1000"):
                build()
            continue
        store = build()
        rel = np.asarray(store["b"].times)
        assert len(np.unique(rel)) == 5
        anchor = np.float32(rel[2])
        got = sample_windows(store, np.int32([0]), np.array([anchor]),
                             {"b": Window(steps=(-2, -1, 0, 1, 2))})["b"]
        np.testing.assert_array_equal(np.asarray(got.values)[0, :, 0], np.arange(5.0))
        assert np.asarray(got.valid).all()


def test_frame_numbers_with_fps_keep_dropped_frames():
    """frames= (LeRobot's frame_index) with the stream's fps: t = frame / fps, so a dropped
    frame leaves its gap and a linear window interpolates across it; frame numbers passed
    as int64 times are refused instead of read as nanoseconds."""
    f32 = np.float32
    store = EpisodeStore.from_episodes(
        {"cam": [np.arange(4, dtype=f32)[:, None], np.arange(2, dtype=f32)[:, None]]},
        frames={"cam": [np.array([0, 1, 3, 4]), np.array([5, 6])]}, fps={"cam": 30.0})
    np.testing.assert_array_equal(np.asarray(store["cam"].times),
                                  (np.array([0, 1, 3, 4, 5, 6]) / 30.0).astype(f32))
    out = sample_windows(store, np.int32([0]), np.float32([0.0]),
                         {"cam": Window(seconds=tuple(np.arange(4) / 30.0))})["cam"]
    np.testing.assert_allclose(np.asarray(out.values)[0, :, 0], [0, 1, 1.5, 2], rtol=1e-6)
    values = {"cam": [np.arange(4, dtype=f32)[:, None]]}
    for kwargs, match in (
            (dict(times={"cam": [np.int64([0, 1, 3, 4])]}), r"mean spacing below 1 us.*frames="),
            (dict(frames={"cam": [np.int64([0, 1, 3, 4])]}), r"frames\['cam'\] needs the "
             r"stream's rate"),
            (dict(frames={"cam": [np.float64([0, 1, 3, 4])]}, fps=30.0), "integer frame numbers"),
            (dict(frames={"cam": [np.int64([0, 1, 3, 4])]}, times={"cam": [f32([0, 1, 2, 3])]},
                  fps=30.0), "both times and frames")):
        with pytest.raises(StoreError, match=match):
            EpisodeStore.from_episodes(values, **kwargs)


def test_empty_episodes_in_any_empty_form():
    """[] and np.zeros(0) are empty episodes of any stream: they take its D and dtype."""
    f32 = np.float32
    store = EpisodeStore.from_episodes(
        {"a": [np.ones((3, 2), f32), np.zeros(0), []]},
        {"a": [f32([0.0, 0.1, 0.2]), [], np.zeros(0)]}, valid={"a": [np.ones(3, bool), [], []]})
    assert store["a"].values.shape == (3, 2) and store["a"].values.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(store["a"].offsets), [0, 3, 3, 3])


def test_fps_clock_and_float64_seconds(rng):
    t64 = [1.7e9 + np.cumsum(rng.uniform(0.01, 0.03, 20)) for _ in range(2)]
    store = EpisodeStore.from_episodes(
        {"cam": [np.zeros((10, 2), np.float32), np.zeros((4, 2), np.float32)],
         "imu": [np.zeros((20, 3), np.float32)] * 2},
        {"imu": t64}, fps={"cam": 15.0})
    np.testing.assert_array_equal(store.origins, [t[0] for t in t64])
    cam = np.asarray(store["cam"].times)
    np.testing.assert_array_equal(cam, np.concatenate([np.arange(10) / 15.0,
                                                        np.arange(4) / 15.0]).astype(np.float32))
    imu = np.asarray(store["imu"].times)
    np.testing.assert_array_equal(imu[:20], (t64[0] - t64[0][0]).astype(np.float32))


def test_float64_values_follow_jax_and_bfloat16_kept(rng):
    store = EpisodeStore.from_episodes(
        {"a": [rng.normal(size=(3, 2))], "b": [rng.normal(size=(3, 2)).astype(ml_dtypes.bfloat16)]},
        fps=10.0)
    assert store["a"].values.dtype == jnp.float32  # x64 off: JAX's float64 -> float32
    assert store["b"].values.dtype == jnp.bfloat16
    assert store["a"].times.dtype == jnp.float32


def test_float64_values_that_float32_cannot_resolve_warn(rng):
    """GPS degrees and epoch stamps as values: float32 steps of ~4e-6 deg (0.4 m) or 128 s
    are a large share of what such features span, so the store warns (naming the stream and
    the feature), also when the values arrive in chunks; ordinary float64 poses do not."""
    import warnings

    pose = rng.normal(0.5, 0.2, (400, 3))
    gps = np.column_stack([37.4219 + rng.normal(0, 2e-4, 400), -122.084 + rng.normal(0, 2e-4, 400)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EpisodeStore.from_episodes({"pose": [pose[:150], pose[150:]]}, fps=10.0)
    with pytest.warns(UserWarning, match=r"stream 'gps'.*feature [01].*jax_enable_x64"):
        EpisodeStore.from_episodes({"gps": [gps[:150], gps[150:]]}, fps=10.0)
    flat = dict(values={"gps": gps}, offsets={"gps": np.array([0, 150, 400])}, fps=10.0)
    with pytest.warns(UserWarning, match="stream 'gps'"):
        EpisodeStore.from_flat(**flat, chunk_bytes=64)


def test_empty_and_single_sample_episodes_windows():
    store = EpisodeStore.from_episodes({"x": [np.zeros((0, 2), np.float32),
                                              np.float32([[1.0, 2.0]])]}, fps=10.0)
    out = sample_windows(store, np.int32([0, 1, 1]), np.float32([0.0, 0.0, 5.0]),
                         {"x": Window(seconds=(-0.1, 0.0, 0.1)),
                          "i": Window(steps=(-1, 0, 1), stream="x")})
    np.testing.assert_array_equal(np.asarray(out["x"].valid),
                                  [[0, 0, 0], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(np.asarray(out["i"].valid),
                                  [[0, 0, 0], [0, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(np.asarray(out["i"].values)[1:], [[[1, 2]] * 3] * 2)


def test_pytree_jit_and_replication(rng):
    data = make_dataset(rng, E=3)
    store = EpisodeStore.from_episodes(*store_args(data)[:2], valid=store_args(data)[2])
    leaves, treedef = jax.tree.flatten(store)
    again = jax.tree.unflatten(treedef, leaves)
    assert_same_store(store, again)
    doubled = jax.jit(lambda s: jax.tree.map(lambda x: x, s))(store)
    assert_same_store(store, doubled)
    devs = jax.devices("cpu")
    if len(devs) >= 2:
        from jax.sharding import NamedSharding, PartitionSpec as P
        mesh = jax.sharding.Mesh(np.array(devs), ("d",))
        rep = jax.device_put(store, NamedSharding(mesh, P()))
        for leaf in jax.tree.leaves(rep):
            assert leaf.sharding.is_fully_replicated and len(leaf.devices()) == len(devs)
        assert_same_store(store, rep)


class _SmallDevice:
    """A device reporting 1 MiB free (memory_stats as GPUs report it)."""

    def memory_stats(self):
        return {"bytes_limit": 2 << 20, "bytes_in_use": 1 << 20}

    def __str__(self):
        return "fake:0"


def test_refuses_what_does_not_fit():
    values = {"x": np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (1 << 20, 4),
                                                   (0, 0))}
    with pytest.raises(MemoryError, match=r"needs .* GiB on fake:0, which has 0.00 GiB free"):
        EpisodeStore.from_flat(values, np.array([0, 1 << 20]), fps=10.0, device=_SmallDevice())


# -- bad input ---------------------------------------------------------------------------
def _f32(*shape):
    return np.zeros(shape, np.float32)


@pytest.mark.parametrize("build,match", [
    (lambda: EpisodeStore.from_flat({"x": _f32(5, 2)}, np.array([0, 2, 4]), fps=1.0),
     r"offsets\['x'\]\[-1\] = 4 must equal .* N = 5"),
    (lambda: EpisodeStore.from_flat({"x": _f32(5, 2)}, np.array([0, 3, 2, 5]), fps=1.0),
     r"non-decreasing: episode 1"),
    (lambda: EpisodeStore.from_flat({"x": _f32(5, 2)}, np.array([1, 5]), fps=1.0),
     r"\[0\] must be 0"),
    (lambda: EpisodeStore.from_flat({"x": _f32(5, 2)}, np.array([0.0, 5.0]), fps=1.0),
     r"must be integers"),
    (lambda: EpisodeStore.from_flat({"x": _f32(4, 2)}, np.array([0, 2, 4]),
                                    {"x": np.float32([0, 1, 0.7, 0.5])}),
     r"times\['x'\] episode 1 is not sorted: sample 1"),
    (lambda: EpisodeStore.from_flat({"x": _f32(4, 2)}, np.array([0, 2, 4]),
                                    {"x": np.float32([0, 1, np.nan, 0.7])}),
     r"times\['x'\] episode 1 sample 0 is nan"),
    (lambda: EpisodeStore.from_flat({"x": _f32(4, 2)}, np.array([0, 4]),
                                    {"x": np.float32([0, 1, 2, 3])[:3]}),
     r"times\['x'\] must be \[N\] with N = 4"),
    (lambda: EpisodeStore.from_episodes({"x": [_f32(3, 2), _f32(2, 2)]},
                                        {"x": [np.float32([0, 1, 2]), np.float32([0, 1, 2])]}),
     r"times\['x'\] episode 1 must be \[n\] with n = 2"),
    (lambda: EpisodeStore.from_episodes({"x": [_f32(3, 2), np.zeros((2, 2))]}, fps=1.0),
     r"values\['x'\] mixes dtypes: episode 0 is float32, episode 1 is float64"),
    (lambda: EpisodeStore.from_episodes({"x": [_f32(3, 2), _f32(2, 3)]}, fps=1.0),
     r"values\['x'\] episode 1 has 3 columns"),
    (lambda: EpisodeStore.from_episodes({"x": [np.zeros((3, 2), np.int64)]}, fps=1.0),
     r"values\['x'\] has dtype int64.*cast"),
    (lambda: EpisodeStore.from_episodes({"x": [_f32(3, 2)], "y": [_f32(3, 2)]},
                                        {"x": [np.float32([0, 1, 2])],
                                         "y": [np.int64([0, 10**7, 2 * 10**7])]}),
     r"mix time representations"),
    (lambda: EpisodeStore.from_episodes({"x": [_f32(3, 2)]}), r"neither times nor fps"),
    (lambda: EpisodeStore.from_episodes({"x": [_f32(3, 2)], "y": [_f32(1, 2)] * 2}, fps=1.0),
     r"episode counts differ"),
    (lambda: EpisodeStore.from_episodes({"x": [_f32(3, 2)]}, fps=1.0,
                                        valid={"x": [np.ones(3, np.int8)]}),
     r"valid\['x'\] episode 0 must be a bool mask"),
    (lambda: EpisodeStore.from_episodes({"x": []}, fps=1.0), r"at least one episode"),
    # epoch stamps passed as float32 (rounded to 128 s steps): resample's resolution rule
    (lambda: EpisodeStore.from_episodes(
        {"x": [_f32(3, 2), _f32(50, 2)]},
        {"x": [np.float32([0.0, 0.1, 0.2]), (1.7e9 + np.arange(50) * 0.02).astype(np.float32)]}),
     r"times\['x'\] episode 1: float32 seconds of magnitude 1\.7e\+09 cannot resolve"),
    (lambda: EpisodeStore.from_episodes({"x": [_f32(3, 2)]}, fps=-1.0), r"finite rate > 0"),
    (lambda: EpisodeStore.from_episodes({"x": [_f32(3, 2)]}, {"x": [np.int32([0, 1, 2])]}),
     r"times\['x'\] has dtype int32: integer times are nanoseconds.*fps="),
    (lambda: EpisodeStore.from_episodes({"x": [_f32(3, 2, 2)]}, fps=1.0), r"\[n, D\]"),
])
def test_bad_input_names_stream_and_episode(build, match):
    with pytest.raises((StoreError, TypeError), match=match):
        build()


def test_unsorted_across_a_chunk_boundary_is_found():
    t = np.arange(1000, dtype=np.float32) / 100
    t[600] = t[599] - 0.001
    with pytest.raises(StoreError, match=r"episode 0 is not sorted: sample 600"):
        EpisodeStore.from_flat({"x": _f32(1000, 1)}, np.array([0, 1000]), {"x": t},
                               chunk_bytes=8 * 600)


def test_ragged_stream_fields():
    s = RaggedStream(jnp.zeros((3, 2)), jnp.zeros(3), jnp.int32([0, 1, 3]))
    assert s.num_episodes == 2 and s.valid is None
    np.testing.assert_array_equal(np.asarray(s.lengths()), [1, 2])


def test_from_bags_real_recording(tmp_path):
    """The sena recording written as two ROS 2 bags (one per episode), read back with
    read_bag: one episode per bag, header stamps relative to each bag's origin."""
    pytest.importorskip("rosbags")
    import importlib.util
    import pathlib
    # the bag writing helpers of tests/io/test_io.py, loaded by path (tests/io is on sys.path
    # only when pytest collected that directory too)
    path = pathlib.Path(__file__).resolve().parents[1] / "io" / "test_io.py"
    spec = importlib.util.spec_from_file_location("_episodes_bag_helpers", path)
    test_io = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_io)
    from jax_robocache.io import read_bag
    with np.load(sena_path()) as d:
        sena = {k: d[k] for k in d.files}
    sena["poses"] = np.c_[np.cumsum(sena["odo_inc"][:, :2], axis=0), np.zeros(224)]
    sena["scan_ns"], sena["odo_ns"] = test_io.epoch_ns(sena["scan_t"]), test_io.epoch_ns(
        sena["odo_t"])
    msgs = test_io.sena_messages(sena)
    half = len(msgs) // 2
    bags = [read_bag(test_io.write_bag(tmp_path / f"ep{k}", part))
            for k, part in enumerate((msgs[:half], msgs[half:]))]
    store = EpisodeStore.from_bags(bags, {"scan": "/scan",
                                          "pos": ("/odom", ("pose.pose.position",))})
    assert store.num_episodes == 2 and store.origin_unit == "ns"
    for e, bag in enumerate(bags):
        assert store.origins[e] == bag.origin_ns
        for name, topic in (("scan", "/scan"), ("pos", "/odom")):
            o = np.asarray(store[name].offsets)
            np.testing.assert_array_equal(np.asarray(store[name].times)[o[e]:o[e + 1]],
                                          bag[topic].times)
        o = np.asarray(store["pos"].offsets)
        want = bag["/odom"].values[:, bag["/odom"].columns("pose.pose.position")]
        np.testing.assert_array_equal(np.asarray(store["pos"].values)[o[e]:o[e + 1]],
                                      want.astype(np.float32))
    # one topic alone: still measured from the bag's origin (not from that topic's first
    # stamp), so anchors taken from bag[topic].times mean the same instants
    assert any(bag[t].stamps_ns[0] != bag.origin_ns for bag in bags for t in ("/scan", "/odom"))
    for name, topic in (("scan", "/scan"), ("pos", "/odom")):
        only = EpisodeStore.from_bags(bags, {name: topic})
        for e, bag in enumerate(bags):
            assert only.origins[e] == bag.origin_ns
            o = np.asarray(only[name].offsets)
            np.testing.assert_array_equal(np.asarray(only[name].times)[o[e]:o[e + 1]],
                                          bag[topic].times)
    with pytest.raises(StoreError, match="bag 0 has no topic '/imu'"):
        EpisodeStore.from_bags(bags, {"imu": "/imu"})
    with pytest.raises(StoreError, match=r"origins must be \[2\] int64"):
        EpisodeStore.from_episodes({"x": [_f32(2, 1)] * 2},
                                   {"x": [np.int64([5, 9])] * 2}, origins=[1.5, 2.5])


X64_SCRIPT = r'''
import sys
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from references import sample_windows as reference_windows
from jax_robocache import EpisodeStore, Window, sample_windows
rng = np.random.default_rng(77)
E = 3
times = [1.7e9 + 3600.0 * e + np.cumsum(rng.uniform(0.01, 0.03, n)) for e, n in
         enumerate((40, 0, 25))]
values = [rng.normal(size=(len(t), 3)) for t in times]
store = EpisodeStore.from_episodes({"x": values}, {"x": times})
assert store["x"].times.dtype == np.float64 and store["x"].values.dtype == np.float64
rel = [t - store.origins[e] if len(t) else t for e, t in enumerate(times)]
spec = {"x": Window(seconds=(-0.05, 0.0, 0.02), offset=0.003),
        "i": Window(steps=(-2, 0, 3), stream="x", out_of_range="nan")}
episode = rng.integers(-1, E + 1, 64).astype(np.int32)
anchor = rng.uniform(-0.1, 1.2, 64)
out = sample_windows(store, episode, anchor, spec)
data = {"x": dict(values=values, times=rel, valid=None)}
d = lambda w: dict(out_of_range=w.out_of_range, offset=w.offset, tolerance=None, window=None,
                   stream=w.stream, method=w.method,
                   **({"seconds": w.seconds} if w.is_time else {"steps": w.steps}))
ref = reference_windows.sample_windows(data, episode, anchor, {n: d(w) for n, w in spec.items()},
                                       time_dtype=np.float64)
for n in spec:
    np.testing.assert_array_equal(np.asarray(out[n].valid), ref[n][1])
    np.testing.assert_allclose(np.asarray(out[n].values), ref[n][0], rtol=1e-12, atol=1e-12,
                               equal_nan=True)
    np.testing.assert_allclose(np.asarray(out[n].age), ref[n][2], rtol=1e-6, equal_nan=True)
# int64 ns on whole milliseconds: relative seconds correctly rounded (0.3 s is the float64
# nearest 0.3, not 0.30000000000000004), so an anchor on a sample's time selects that sample.
ns = 1_700_000_000_000_000_000 + np.array([0, 100, 200, 300, 400, 700]) * 1_000_000
s2 = EpisodeStore.from_episodes({"a": [np.arange(6.0)[:, None]]}, {"a": [ns]})
np.testing.assert_array_equal(np.asarray(s2["a"].times), [0.0, 0.1, 0.2, 0.3, 0.4, 0.7])
got = sample_windows(s2, np.int32([0] * 6), np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.7]),
                     {"a": Window(steps=(0,))})["a"]
np.testing.assert_array_equal(np.asarray(got.values)[:, 0, 0], np.arange(6.0))
np.testing.assert_array_equal(np.asarray(got.age)[:, 0], 0.0)
print("x64 ok")
'''


def test_float64_times_and_values_under_x64(tmp_path):
    """Under jax_enable_x64 the store keeps float64 values and float64 relative times (epoch
    seconds an hour apart per episode), and windows match the float64 reference."""
    import os
    import subprocess
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    script = tmp_path / "x64.py"
    script.write_text(X64_SCRIPT)
    root = os.path.dirname(os.path.dirname(here))
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, str(script), here, os.path.dirname(here)],
                          capture_output=True, text=True, env=env, timeout=600,
                          cwd=os.getcwd())
    assert proc.returncode == 0 and "x64 ok" in proc.stdout, proc.stderr[-3000:]


def test_direct_construction_checks_episode_counts():
    a = RaggedStream(jnp.zeros((3, 2)), jnp.zeros(3), jnp.int32([0, 1, 3]))
    b = RaggedStream(jnp.zeros((3, 2)), jnp.zeros(3), jnp.int32([0, 3]))
    assert EpisodeStore({"a": a}).num_episodes == 2
    with pytest.raises(StoreError, match="episode counts"):
        EpisodeStore({"a": a, "b": b})
    with pytest.raises(TypeError, match="RaggedStream"):
        EpisodeStore({"a": (1, 2)})
