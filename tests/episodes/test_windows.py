"""sample_windows against the independent float64 reference (reference_windows.py).

Fresh seeded ragged stores (empty and one-sample episodes, repeated stamps,
masks, bfloat16), every method and out_of_range, index windows against
LeRobot's and Octo's rules, windows wider than the episode, the real sena
recording, hypothesis fuzzing, jit / vmap / grad / batch sharding, bitwise
determinism and bad inputs.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

from exact import assert_identical
from references import sample_windows as reference_windows
from jax_robocache import EpisodeStore, Stream, Window, align, sample_windows
from jax_robocache.demo.episode import sena_path
from jax_robocache.episodes.sample_windows_cases import (every_method_spec, make_dataset,
                                                         random_anchors, store_args)

OUT_OF_RANGE = ("clamp", "nan", "zero")


def compare(out, ref, data, spec, label=""):
    for name, w in spec.items():
        values, valid, age = (np.asarray(x) for x in out[name])
        r_values, r_valid, r_age = ref[name]
        dtype = np.asarray(data[w.stream or name]["values"][0]).dtype
        msg = f"{label} window {name!r}"
        np.testing.assert_array_equal(valid, r_valid, err_msg=msg + " valid")
        if not w.is_time:
            rtol, atol = 0, 0
        elif dtype == np.float32:
            rtol, atol = 2e-5, 2e-5
        else:  # bfloat16: the twin rounds its float32 result once
            rtol, atol = 1e-2, 1e-2
        np.testing.assert_allclose(values.astype(np.float64), r_values, rtol=rtol, atol=atol,
                                   equal_nan=True, err_msg=msg + " values")
        np.testing.assert_allclose(age.astype(np.float64), r_age, rtol=1e-6, atol=2e-6,
                                   equal_nan=True, err_msg=msg + " age")


@pytest.mark.parametrize("seed,oor", list(enumerate(OUT_OF_RANGE)))
def test_matches_reference(seed, oor, mk_rng):
    rng = mk_rng(seed)
    data = make_dataset(rng, E=6, masked=("state", "wrench"))
    store = EpisodeStore.from_episodes(*store_args(data)[:2], valid=store_args(data)[2])
    episode, anchor = random_anchors(rng, data, 96)
    spec = every_method_spec(oor)
    out = jax.jit(lambda s, e, a: sample_windows(s, e, a, spec))(store, episode, anchor)
    ref = reference_windows.sample_windows(data, episode, anchor,
                                           reference_windows.spec_dicts(spec))
    compare(out, ref, data, spec, f"seed {seed}")
    # Sanity of the draw itself: the cases cover valid and invalid entries of every window.
    for name in spec:
        assert ref[name][1].any() and (~ref[name][1]).any(), name


@pytest.fixture
def mk_rng():
    def make(seed):
        print(f"numpy seed {seed}")
        return np.random.default_rng(seed)
    return make


def test_shapes_dtypes_and_broadcast(mk_rng):
    rng = mk_rng(3)
    data = make_dataset(rng, E=3)
    store = EpisodeStore.from_episodes(*store_args(data)[:2], valid=store_args(data)[2])
    spec = {"emb": Window(seconds=(0.0, 0.1)), "action": Window(steps=range(5))}
    out = sample_windows(store, jnp.zeros((2, 3), jnp.int32), jnp.float32(0.2), spec)
    assert list(out) == ["action", "emb"]
    assert out["emb"].values.shape == (2, 3, 2, 5) and out["emb"].values.dtype == jnp.bfloat16
    assert out["action"].values.shape == (2, 3, 5, 2)
    assert out["action"].valid.shape == (2, 3, 5) and out["action"].valid.dtype == bool
    assert out["action"].age.dtype == jnp.float32
    # int64 episode numbers beyond int32 do not wrap into a valid episode
    far = np.array([2**32, 2**32 + 1, -2**32], np.int64)
    res = sample_windows(store, far, np.full(3, 0.2, np.float32), spec)
    assert not np.asarray(res["action"].valid).any()


def test_index_windows_follow_lerobot(mk_rng):
    """A fps store (LeRobot's frame clock): values hold global frame numbers, anchors are the
    frames' timestamps; indices and padding must be LeRobot's query_indices / is_pad."""
    rng = mk_rng(4)
    lengths = [7, 1, 0, 12, 3]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    frames = [np.arange(s, s + n, dtype=np.float32)[:, None] for s, n in zip(starts, lengths)]
    store = EpisodeStore.from_episodes({"action": frames}, fps=30.0)
    deltas = (-3, -1, 0, 1, 2, 10)
    spec = {"action": Window(steps=deltas)}
    for e, n in enumerate(lengths):
        for i in range(n):
            anchor = np.float32(i / 30.0)
            out = sample_windows(store, np.int32([e]), anchor[None], spec)["action"]
            query, is_pad = reference_windows.lerobot_query_indices(
                starts[e] + i, starts[e], starts[e] + n, deltas)
            np.testing.assert_array_equal(np.asarray(out.values)[0, :, 0], query)
            np.testing.assert_array_equal(~np.asarray(out.valid)[0], is_pad)
    del rng


@pytest.mark.parametrize("history,future", [(2, 49), (5, 3), (1, 0)])
def test_index_windows_follow_octo(history, future, mk_rng):
    rng = mk_rng(5)
    n = int(rng.integers(1, 40))
    t = (np.arange(n) / 50.0).astype(np.float32)
    store = EpisodeStore.from_episodes({"obs": [np.arange(n, dtype=np.float32)]},
                                       {"obs": [t]})
    spec = {"obs": Window(steps=range(-history + 1, 1)),
            "act": Window(steps=range(future + 1), stream="obs")}
    out = sample_windows(store, np.zeros(n, np.int32), t, spec)
    obs_idx, obs_pad, act_idx, act_pad = reference_windows.octo_chunk(n, history, future)
    np.testing.assert_array_equal(np.asarray(out["obs"].values)[..., 0], obs_idx)
    np.testing.assert_array_equal(~np.asarray(out["obs"].valid), obs_pad)
    np.testing.assert_array_equal(np.asarray(out["act"].values)[..., 0], act_idx)
    np.testing.assert_array_equal(~np.asarray(out["act"].valid), act_pad)


def test_sena_recording_equals_align():
    """The real recording (float64 epoch stamps), cut into two episodes: time windows equal
    align on each episode's samples bit for bit, and the reference to float rounding."""
    data = np.load(sena_path())
    scan_t, odo_t = data["scan_t"], data["odo_t"]
    cut_s, cut_o = 120, int(np.searchsorted(odo_t, scan_t[120]))
    values = {"scan": [data["ranges"][:cut_s, :16], data["ranges"][cut_s:, :16]],
              "odom": [data["odo_inc"][:cut_o], data["odo_inc"][cut_o:]]}
    times = {"scan": [scan_t[:cut_s], scan_t[cut_s:]], "odom": [odo_t[:cut_o], odo_t[cut_o:]]}
    store = EpisodeStore.from_episodes(values, times)
    assert store.origin_unit == "s"
    origins = [min(scan_t[0], odo_t[0]), min(scan_t[cut_s], odo_t[cut_o])]
    np.testing.assert_array_equal(store.origins, origins)
    rng = np.random.default_rng(6)
    B = 40
    episode = rng.integers(0, 2, B).astype(np.int32)
    anchor = rng.uniform(-1, 14, B).astype(np.float32)
    spec = {"odom": Window(seconds=np.arange(-4, 5) * 0.05, offset=0.01, tolerance=0.2),
            "scan": Window(seconds=(-0.2, 0.0), method="previous", out_of_range="nan")}
    out = sample_windows(store, episode, anchor, spec)
    for name, w in spec.items():
        for e in range(2):
            rows = episode == e
            t_rel = (times[name][e] - origins[e]).astype(np.float32)
            q = (anchor[rows][:, None] + np.asarray(w.seconds, np.float32)).astype(np.float32)
            s = Stream(values[name][e].astype(np.float32)[None], t_rel[None], method=w.method,
                       offset=w.offset, tolerance=w.tolerance)
            ref = align({name: s}, q[None], out_of_range=w.out_of_range)[name]
            for got, want in zip(out[name], ref):
                np.testing.assert_array_equal(np.asarray(got)[rows], np.asarray(want)[0])
    eps = {n: dict(values=values[n], times=[(times[n][e] - origins[e]).astype(np.float32)
                                            for e in range(2)], valid=None) for n in values}
    ref = reference_windows.sample_windows(eps, episode, anchor,
                                           reference_windows.spec_dicts(spec))
    compare(out, ref, eps, spec, "sena")


def test_grid_aligned_edges_keep_every_rounding(mk_rng):
    """A 50 Hz fps stream with anchors on its grid: window edges land on samples, where one
    rounding more or less picks another sample. Each window, alone (K = 1: XLA would fold
    its constant delta and offset into one) or within a longer spec, equals the independent
    reference, and align on the same queries."""
    rng = mk_rng(21)
    lengths = (60, 41)
    values = {"s": [np.arange(n, dtype=np.float32)[:, None] * 2 + 1 for n in lengths]}
    store = EpisodeStore.from_episodes(values, fps=50.0)
    B = 64
    episode = rng.integers(0, 2, B).astype(np.int32)
    anchor = (rng.integers(0, 45, B) / 50.0).astype(np.float32)
    specs = [
        {"p1": Window(stream="s", seconds=(-0.02,), method="previous", offset=0.01)},
        {"p3": Window(stream="s", seconds=(-0.02, 0.0, 0.5), method="previous", offset=0.01)},
        {"w": Window(stream="s", seconds=(0.0, 0.02), method="window_mean", window=0.03,
                     offset=0.01)},
        {"l1": Window(stream="s", seconds=(0.04,), offset=0.02),
         "n1": Window(stream="s", seconds=(0.06,), method="nearest", offset=0.01),
         "i": Window(stream="s", steps=(-1, 0, 1), offset=0.01)},
    ]
    eps = {"s": dict(values=values["s"], valid=None,
                     times=[(np.arange(n) / 50.0).astype(np.float32) for n in lengths])}
    for spec in specs:
        out = jax.jit(lambda e, a, spec=spec: sample_windows(store, e, a, spec))(episode, anchor)
        ref = reference_windows.sample_windows(eps, episode, anchor,
                                               reference_windows.spec_dicts(spec))
        compare(out, ref, eps, spec, "grid")
    # the first entry of p3 is p1, and align at the same queries agrees
    one = sample_windows(store, episode, anchor, specs[0])["p1"]
    three = sample_windows(store, episode, anchor, specs[1])["p3"]
    assert_identical(one.values[:, 0], three.values[:, 0])
    for e in range(2):
        rows = episode == e
        q = (anchor[rows] + np.float32(-0.02)).astype(np.float32)
        s = Stream(values["s"][e][None], eps["s"]["times"][e][None], method="previous",
                   offset=0.01)
        ref = jax.jit(lambda s, q: align({"s": s}, q))(s, q[None])["s"]
        assert_identical(np.asarray(one.values)[rows, 0], np.asarray(ref.values)[0])


def test_nan_anchor_and_absent_episode(mk_rng):
    rng = mk_rng(7)
    data = make_dataset(rng, E=3)
    store = EpisodeStore.from_episodes(*store_args(data)[:2])
    for oor in OUT_OF_RANGE:
        spec = {"action": Window(steps=(-1, 0, 1), out_of_range=oor),
                "state": Window(seconds=(0.0, 0.1), out_of_range=oor)}
        out = sample_windows(store, np.int32([0, 7, -1, 1]),
                             np.float32([np.nan, 0.2, 0.2, 0.2]), spec)
        for name in spec:
            v, valid, age = (np.asarray(x) for x in out[name])
            assert not valid[:3].any()
            assert np.isnan(age[0]).all() and np.isinf(age[1:3]).all()
            if oor == "zero":
                assert (v[:3] == 0).all()
            elif oor == "nan":
                assert np.isnan(v[:3]).all()
            else:  # NaN anchor: NaN (as align's NaN query); absent episode: zeros
                assert np.isnan(v[0]).all() and (v[1:3] == 0).all()
        # episode 1 is empty in the default dataset: invalid, never an out-of-bounds read
        assert len(data["action"]["times"][1]) == 0
        assert not np.asarray(out["action"].valid)[3].any()


def test_vmap_matches_flat_call(mk_rng):
    rng = mk_rng(8)
    data = make_dataset(rng, E=4)
    store = EpisodeStore.from_episodes(*store_args(data)[:2], valid=store_args(data)[2])
    episode, anchor = random_anchors(rng, data, 24)
    spec = every_method_spec("nan")
    flat = sample_windows(store, episode, anchor, spec)
    vm = jax.vmap(lambda e, a: sample_windows(store, e, a, spec))(episode.reshape(4, 6),
                                                                  anchor.reshape(4, 6))
    for name in spec:
        for got, want in zip(vm[name], flat[name]):
            got = np.asarray(got).reshape(np.asarray(want).shape)
            assert_identical(got, want, f"vmap window {name!r}")
    # vmap over scalar rows (B = 1 per call)
    one = jax.vmap(lambda e, a: sample_windows(store, e, a, spec))(episode, anchor)
    for name in spec:
        np.testing.assert_array_equal(np.asarray(one[name].valid), np.asarray(flat[name].valid))


def test_vmap_over_one_query_argument_or_the_store(mk_rng):
    """vmap over episode alone (one anchor for all), anchor alone (one episode), or a stack of
    stores with one query: each equals the call with the other argument repeated."""
    rng = mk_rng(18)
    data = make_dataset(rng, E=3)
    store = EpisodeStore.from_episodes(*store_args(data)[:2])
    episode, anchor = random_anchors(rng, data, 5)
    spec = every_method_spec("nan")

    def same(got, want, what):
        for name in spec:
            for g, w in zip(got[name], want[name]):
                assert_identical(np.asarray(g), np.asarray(w), f"{what} window {name!r}")

    a0, e0 = anchor[0], int(episode[0])
    same(jax.vmap(lambda e: sample_windows(store, e, a0, spec))(episode),
         sample_windows(store, episode, np.full(5, a0, np.float32), spec), "episode mapped")
    same(jax.jit(jax.vmap(lambda a: sample_windows(store, e0, a, spec)))(anchor),
         sample_windows(store, np.full(5, e0, np.int32), anchor, spec), "anchor mapped")
    values, times, _ = store_args(data)
    # two stores of one layout (same clocks, other values), stacked along a new axis
    other = {n: [(np.asarray(v, np.float32) * 2 - 1).astype(np.asarray(v).dtype) for v in vs]
             for n, vs in values.items()}
    stores = [store, EpisodeStore.from_episodes(other, times)]
    stacked = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *stores)
    got = jax.vmap(lambda s: sample_windows(s, e0, a0, spec))(stacked)
    for k, s in enumerate(stores):
        want = sample_windows(s, np.int32([e0]), np.float32([a0]), spec)
        same({n: [np.asarray(x)[k][None] for x in got[n]] for n in spec}, want, f"store {k}")


def test_bitwise_deterministic(mk_rng):
    rng = mk_rng(9)
    data = make_dataset(rng, E=4, masked=("state", "wrench"))
    store = EpisodeStore.from_episodes(*store_args(data)[:2], valid=store_args(data)[2])
    episode, anchor = random_anchors(rng, data, 64)
    spec = every_method_spec("clamp")
    f = jax.jit(lambda s, e, a: sample_windows(s, e, a, spec))
    runs = [f(store, episode, anchor) for _ in range(2)]  # one executable, run twice
    runs.append(sample_windows(store, episode, anchor, spec))  # eager: its own compilation
    for name in spec:
        for k in range(3):
            a = np.asarray(runs[0][name][k]).view(np.uint8)
            for other in runs[1:]:
                np.testing.assert_array_equal(a, np.asarray(other[name][k]).view(np.uint8))


def _sum(out, names):
    return sum(jnp.sum(jnp.where(out[n].valid[..., None], out[n].values, 0)) for n in names)


def test_grad_times_ignores_nan_anchors():
    """Rows with a NaN anchor (epoch_batch's padding, sample_anchors with nothing eligible)
    add nothing to d loss / d times: the same finite gradient as the batch without them."""
    t = np.float32([0.0, 0.1, 0.2, 0.35, 0.4])
    v = np.arange(10, dtype=np.float32).reshape(5, 2)
    store = EpisodeStore.from_episodes({"x": [v]}, {"x": [t]})
    spec = {"x": Window(seconds=(0.0, 0.07)),
            "e": Window(seconds=(0.5,), stream="x", out_of_range="extrapolate")}

    def loss(times, anchor):
        s = store.replace(x=store["x"].replace(times=times))
        return _sum(sample_windows(s, np.zeros(len(anchor), np.int32), anchor, spec), spec)

    g_nan = np.asarray(jax.grad(loss)(store["x"].times, jnp.float32([0.05, np.nan, 0.22])))
    g_ref = np.asarray(jax.grad(loss)(store["x"].times, jnp.float32([0.05, 0.22])))
    assert np.isfinite(g_nan).all() and np.abs(g_ref).sum() > 0
    np.testing.assert_allclose(g_nan, g_ref, rtol=1e-5, atol=1e-6)


def test_grad_values_is_how_often_each_sample_is_read():
    t = np.float32([0.0, 0.1, 0.2, 0.3, 0.4])
    v = np.arange(10, dtype=np.float32).reshape(5, 2)
    store = EpisodeStore.from_episodes({"x": [v, v[:2]]}, {"x": [t, t[:2]]})
    spec = {"x": Window(seconds=(0.05, 0.2)), "idx": Window(steps=(-1, 0, 0), stream="x"),
            "mean": Window(seconds=(0.3,), method="window_mean", window=0.25, stream="x")}
    episode, anchor = np.int32([0, 1]), np.float32([0.1, 0.05])

    def loss(s):
        return _sum(sample_windows(s, episode, anchor, spec), spec)

    g = np.asarray(jax.jit(jax.grad(loss, allow_int=True))(store).streams["x"].values)
    # Episode 0 = flat rows 0..4, episode 1 = rows 5, 6. Row 0 (episode 0, anchor 0.1):
    # linear at 0.15 -> (s1 + s2) / 2 and at 0.3 -> s3; idx: anchor sample 1, steps -1, 0, 0
    # -> s0 + 2 s1; window_mean at 0.1 + 0.3 = 0.4 over (0.15, 0.4] -> (s2 + s3 + s4) / 3.
    # Row 1 (episode 1, anchor 0.05): linear at 0.1 -> s6 (on the sample), at 0.25 outside
    # (invalid: no gradient); idx: anchor sample 5, step -1 is padding -> 2 s5; the mean at
    # 0.35 is outside the range (invalid).
    want = np.array([1, 0.5 + 2, 0.5 + 1 / 3, 1 + 1 / 3, 1 / 3, 2, 1])
    np.testing.assert_allclose(g, np.repeat(want[:, None], 2, axis=1), rtol=1e-4, atol=1e-6)
    # the anchor gradient of a linear window is the slope between the bracketing samples
    # the same through a function of the values alone
    g2 = jax.jit(jax.grad(lambda v: loss(store.replace(x=store["x"].replace(values=v)))))(
        store["x"].values)
    np.testing.assert_array_equal(np.asarray(g2), g)
    da = jax.jit(jax.grad(lambda a: jnp.sum(sample_windows(
        store, np.int32([0]), a, {"x": Window(seconds=(0.0,))})["x"].values)))(
        jnp.float32([0.15]))
    np.testing.assert_allclose(np.asarray(da), [(v[2] - v[1]).sum() / 0.1], rtol=1e-4)


def test_batch_sharded_without_collectives(mk_rng):
    devs = jax.devices("cpu")
    if len(devs) < 4:
        pytest.skip("needs 4 CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=4)")
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
    rng = mk_rng(10)
    data = make_dataset(rng, E=4, masked=("state", "wrench"))
    episode, anchor = random_anchors(rng, data, 32)
    spec = every_method_spec("nan")
    with jax.default_device(devs[0]):  # the same backend as the mesh (a GPU runs the kernel)
        single = sample_windows(EpisodeStore.from_episodes(*store_args(data)[:2],
                                                           valid=store_args(data)[2]),
                                episode, anchor, spec)
    for axis_type in (AxisType.Auto, AxisType.Explicit):
        mesh = jax.sharding.Mesh(np.array(devs[:4]), ("b",), axis_types=(axis_type,))
        with jax.set_mesh(mesh):
            store = EpisodeStore.from_episodes(*store_args(data)[:2], valid=store_args(data)[2])
            store = jax.device_put(store, NamedSharding(mesh, P()))
            e = jax.device_put(episode, NamedSharding(mesh, P("b")))
            a = jax.device_put(anchor, NamedSharding(mesh, P("b")))
            f = jax.jit(lambda s, e, a: sample_windows(s, e, a, spec))
            hlo = f.lower(store, e, a).compile().as_text()
            found = re.findall(r"all-gather|all-to-all|collective-permute|all-reduce|"
                               r"reduce-scatter", hlo)
            assert not found, (axis_type, found)
            out = f(store, e, a)
        for name in spec:
            assert out[name].values.sharding.spec[0] == "b", (axis_type, name)
            for got, want in zip(out[name], single[name]):
                assert_identical(got, want, f"{axis_type} window {name!r}")


# -- fuzzing -------------------------------------------------------------------------
@st.composite
def ragged_cases(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    E = draw(st.integers(1, 4))
    lengths = draw(st.lists(st.integers(0, 7), min_size=E, max_size=E))
    D = draw(st.integers(1, 3))
    values, times, valid = [], [], []
    for n in lengths:
        gaps = rng.choice([0.0, 0.05, 0.1, 0.13], n)
        times.append((rng.uniform(0, 0.1) + np.cumsum(gaps)).astype(np.float32))
        values.append(rng.normal(size=(n, D)).astype(np.float32))
        valid.append(rng.random(n) > 0.25)
    masked = draw(st.booleans())
    method = draw(st.sampled_from(["linear", "nearest", "previous", "window_mean", "steps"]))
    oor = draw(st.sampled_from(OUT_OF_RANGE))
    if method == "steps":
        steps = draw(st.lists(st.integers(-8, 8), min_size=1, max_size=5))
        w = Window(steps=steps, out_of_range=oor, offset=draw(st.sampled_from([0.0, 0.05])))
    else:
        deltas = draw(st.lists(st.sampled_from([-1.0, -0.1, -0.05, 0.0, 0.05, 0.13, 0.5]),
                               min_size=1, max_size=5))
        w = Window(seconds=deltas, method=method, out_of_range=oor,
                   window=0.12 if method == "window_mean" else None,
                   tolerance=draw(st.sampled_from([None, 0.0, 0.06, 0.2])),
                   offset=draw(st.sampled_from([0.0, 0.05])))
    B = draw(st.integers(1, 6))
    episode = rng.integers(-1, E + 1, B).astype(np.int32)
    anchor = rng.choice(np.float32([0.0, 0.05, 0.1, 0.13, 0.3, -0.2, np.nan, 0.26]), B)
    return dict(seed=seed, values=values, times=times, valid=valid if masked else None,
                window=w, episode=episode, anchor=anchor.astype(np.float32))


@given(ragged_cases())
def test_fuzz_ragged_stores(case):
    data = {"x": dict(values=case["values"], times=case["times"], valid=case["valid"])}
    store = EpisodeStore.from_episodes({"x": case["values"]}, {"x": case["times"]},
                                       valid=None if case["valid"] is None
                                       else {"x": case["valid"]})
    spec = {"x": case["window"]}
    out = sample_windows(store, case["episode"], case["anchor"], spec)
    ref = reference_windows.sample_windows(data, case["episode"], case["anchor"],
                                           reference_windows.spec_dicts({"x": case["window"]}))
    compare(out, ref, data, spec, f"seed {case['seed']}")


# -- bad input ---------------------------------------------------------------------------
def test_bad_windows_and_arguments():
    t = np.float32([0.0, 0.1])
    store = EpisodeStore.from_episodes({"x": [np.ones((2, 3), np.float32)]}, {"x": [t]})
    e, a = np.int32([0]), np.float32([0.0])
    with pytest.raises(ValueError, match="exactly one of"):
        Window()
    with pytest.raises(ValueError, match="exactly one of"):
        Window(seconds=(0.0,), steps=(0,))
    with pytest.raises(TypeError, match="integers"):
        Window(steps=(0.5,))
    with pytest.raises(ValueError, match="window_mean' needs window"):
        Window(seconds=(0.0,), method="window_mean")
    with pytest.raises(ValueError, match="index windows"):
        Window(steps=(0,), method="window_mean", window=0.1)
    with pytest.raises(ValueError, match="out_of_range"):
        Window(seconds=(0.0,), out_of_range="wrap")
    with pytest.raises(ValueError, match="extrapolate"):
        Window(seconds=(0.0,), method="previous", out_of_range="extrapolate")
    with pytest.raises(ValueError, match="finite"):
        Window(seconds=(np.nan,))
    with pytest.raises(KeyError, match="'y'"):
        sample_windows(store, e, a, {"y": Window(steps=(0,))})
    with pytest.raises(ValueError, match="slerp"):
        sample_windows(store, e, a, {"x": Window(seconds=(0.0,), method="slerp")})
    with pytest.raises(TypeError, match="episode must be an integer"):
        sample_windows(store, np.float32([0]), a, {"x": Window(steps=(0,))})
    with pytest.raises(TypeError, match="anchor must be float"):
        sample_windows(store, e, np.int32([0]), {"x": Window(steps=(0,))})
    with pytest.raises(ValueError, match="broadcast"):
        sample_windows(store, np.int32([0, 0]), np.float32([0, 0, 0]), {"x": Window(steps=(0,))})
    with pytest.raises(TypeError, match="Window"):
        sample_windows(store, e, a, {"x": (0, 1)})
    with pytest.raises(TypeError, match="EpisodeStore"):
        sample_windows({"x": 1}, e, a, {"x": Window(steps=(0,))})
