"""sample_windows' CUDA kernel against its jnp twin and the float64 numpy reference (GPU).

Every test runs the same jitted call twice on the GPU: once lowered to the kernel
(one ``robocache_sample_windows`` custom call, checked in the compiled HLO), once
with ``JAX_ROBOCACHE_FORCE_JNP`` (the twin). ``valid`` and ``age`` must agree bit
for bit (the kernel plans with the twin's arithmetic); values bit for bit (a NaN's
payload aside) for index windows and the one-sample methods (previous, nearest), within a stated
bound for linear / slerp (one rounding of the interpolation) and window_mean
(the kernel sums sequentially, the twin with a segment tree). Fresh random ragged
stores (conftest's run seed, printed on failure) with empty and one-sample
episodes, out-of-range episodes, NaN anchors, masks, bfloat16 / float16 values,
wide and odd feature widths, several windows per call; jit / vmap / grad.
The CPU half (``test_cuda_lowering_*``) checks the lowering's wiring on any machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from references import sample_windows as reference_windows
from conftest import RUN_SEED, device, gpu_available, rng_for
from jax_robocache import EpisodeStore, Window, sample_windows
from jax_robocache._core import extension as _extension
from jax_robocache._core.primitive import FORCE_JNP_ENV
from jax_robocache.episodes.windows import KERNEL_ENV
from jax_robocache.episodes import windows as windows_mod
from jax_robocache.episodes.sample_windows_cases import (every_method_spec, make_dataset,
                                                         random_anchors, store_args)
from test_windows import compare

TARGET = "robocache_sample_windows"
OUT_OF_RANGE = ("clamp", "nan", "zero")
#: Methods whose values are one stored sample (or a fill): the kernel copies its bits.
EXACT = (None, "previous", "nearest")

gpu = pytest.mark.gpu


def _need_gpu():
    if not gpu_available():
        pytest.skip("no GPU with jax_robocache CUDA kernels (%s)"
                    % (_extension.STATUS.reason or "no GPU device"))


@pytest.fixture(autouse=True)
def _kernel_on(monkeypatch):
    """These tests verify the kernel (the default; a user's environment may turn it off)."""
    monkeypatch.delenv(KERNEL_ENV, raising=False)


def _run(fn, args, *, twin, monkeypatch):
    """fn(*args) jitted on the GPU, lowered to the kernel or (twin=True) to the jnp twin;
    returns (outputs as numpy, compiled HLO text)."""
    if twin:
        monkeypatch.setenv(FORCE_JNP_ENV, "1")
    else:
        monkeypatch.delenv(FORCE_JNP_ENV, raising=False)
    with jax.default_device(device("gpu")):
        # A new function: a fresh trace, so the lowering (which reads the env var) runs again.
        compiled = jax.jit(lambda *a: fn(*a)).lower(*args).compile()
        hlo = compiled.as_text()
        out = jax.tree.map(np.asarray, compiled(*args))
    monkeypatch.delenv(FORCE_JNP_ENV, raising=False)
    return out, hlo


def _kernel_and_twin(fn, args, monkeypatch, calls=(1,)):
    kernel, hlo = _run(fn, args, twin=False, monkeypatch=monkeypatch)
    n = len(re.findall(rf'custom_call_target="{TARGET}"', hlo))
    assert n in calls, f"expected {calls} {TARGET} custom call(s) in the compiled HLO, found {n}"
    twin, hlo_twin = _run(fn, args, twin=True, monkeypatch=monkeypatch)
    assert TARGET not in hlo_twin
    return kernel, twin


def _ulp(dtype, x):
    """One unit in the last place of |x| in ``dtype`` (float64 array)."""
    x = np.abs(np.asarray(x, np.float64))
    finfo = ml_dtypes.finfo(dtype) if dtype == ml_dtypes.bfloat16 else np.finfo(dtype)
    tiny = float(finfo.tiny)
    exp = np.floor(np.log2(np.maximum(x, tiny)))
    return np.exp2(exp - finfo.nmant)


def _assert_window(name, w, dtype, kernel, twin, values_of_stream, label):
    kv, kvalid, kage = kernel
    tv, tvalid, tage = twin
    msg = f"{label} window {name!r} (run seed {RUN_SEED})"
    np.testing.assert_array_equal(kvalid, tvalid, err_msg=msg + " valid")
    np.testing.assert_array_equal(kage, tage, err_msg=msg + " age")
    assert kv.dtype == tv.dtype and kv.shape == tv.shape, msg
    k64, t64 = kv.astype(np.float64), tv.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(k64), np.isnan(t64), err_msg=msg + " NaN positions")
    if not w.is_time or w.method in EXACT:
        # Bit for bit except a NaN's payload, which is not part of the contract: the twin's
        # NaN fill goes through XLA's float conversions (bfloat16 0x7FFF on the GPU), the
        # kernel writes the canonical quiet NaN (0x7FC0); both are NaN (checked above).
        nan = np.isnan(t64)
        np.testing.assert_array_equal(kv[~nan].view(np.uint8), tv[~nan].view(np.uint8),
                                      err_msg=msg)
        return
    ok = ~np.isnan(t64)
    top = np.maximum(np.abs(k64), np.abs(t64))
    scale = float(np.max(np.abs(np.asarray(values_of_stream, np.float64)), initial=1.0))
    acc_eps = 2.0 ** -23 if dtype != np.float64 else 2.0 ** -52
    if w.method == "window_mean":
        # Both sum m <= max_window samples in the accumulation type, in different orders:
        # each partial sum errs by at most one rounding, so |diff| <= 2 m eps scale, plus one
        # rounding of the mean to the stream's dtype on each side.
        m = max(int(np.ceil(w.window * 1000 * 1.5)) + 2, 2)  # 1 kHz jittered streams
        bound = 2 * m * acc_eps * scale + _ulp(dtype, top)
    elif w.method == "slerp":
        # Unit quaternions: acos / sin of CUDA and XLA differ by a few float32 ulp, amplified
        # by 1 / sin(theta) <= 32 (slerp proper only below dot = 0.9995).
        bound = 4e-5 + _ulp(dtype, top)
    else:  # linear: x + w (y - x), the product w (y - x) (|.| <= |out| + |x|, also when
        # extrapolating) rounded once (FMA) or twice (twin), then one dtype rounding
        bound = 2 * acc_eps * (top + 2 * scale) + _ulp(dtype, top)
    diff = np.abs(k64 - t64)
    bad = ok & ~(diff <= bound)
    assert not bad.any(), (f"{msg}: {bad.sum()} values beyond the bound; worst "
                           f"{diff[bad].max()} at {np.argwhere(bad)[:3].tolist()}")


def _check_against_twin(spec, data, kernel, twin, label):
    for name, w in spec.items():
        stream = w.stream or name
        dtype = np.asarray(data[stream]["values"][0]).dtype
        all_values = np.concatenate([np.asarray(v, np.float64).reshape(-1)
                                     for v in data[stream]["values"]] + [np.zeros(1)])
        _assert_window(name, w, dtype, kernel[name], twin[name], all_values, label)


def _call(spec):
    return lambda s, e, a: {k: tuple(v) for k, v in sample_windows(s, e, a, spec).items()}


def _store(data):
    values, times, valid = store_args(data)
    return EpisodeStore.from_episodes(values, times, valid=valid)


@gpu
@pytest.mark.parametrize("oor", OUT_OF_RANGE)
@pytest.mark.parametrize("seed", range(2))
def test_kernel_matches_twin_and_reference(oor, seed, monkeypatch):
    """Every method and out_of_range, masks, empty / one-sample / absent episodes, NaN
    anchors, windows wider than the episodes, all in one launch."""
    _need_gpu()
    rng = rng_for(f"kernel-{oor}-{seed}")
    data = make_dataset(rng, E=7, masked=("state", "wrench"))
    store = _store(data)
    episode, anchor = random_anchors(rng, data, 301)
    spec = every_method_spec(oor)
    kernel, twin = _kernel_and_twin(_call(spec), (store, episode, anchor), monkeypatch)
    _check_against_twin(spec, data, kernel, twin, f"seed {seed} {oor}")
    ref = reference_windows.sample_windows(data, episode, anchor,
                                           reference_windows.spec_dicts(spec))
    compare(kernel, ref, data, spec, f"kernel seed {seed} {oor} (run seed {RUN_SEED})")


@gpu
@pytest.mark.parametrize("oor", OUT_OF_RANGE)
def test_dtypes_widths_and_long_windows(oor, monkeypatch):
    """bfloat16 D=512 (16-byte vectors), float16 D=6 (8-byte), float32 D=3 (scalar), float32
    D=2; linear / previous / nearest / window_mean / index windows on each; an index window
    of K=300 entries (one row over several blocks) and a 1-entry window beside it."""
    _need_gpu()
    rng = rng_for(f"dtypes-{oor}")
    streams = {"state": (50, 3, np.float32), "emb": (15, 512, ml_dtypes.bfloat16),
               "half": (200, 6, np.float16), "act": (50, 2, np.float32)}
    data = make_dataset(rng, E=6, streams=streams, masked=("emb", "half"))
    store = _store(data)
    episode, anchor = random_anchors(rng, data, 193)
    spec = {"emb_prev": Window(seconds=(0.0,), method="previous", stream="emb",
                               out_of_range=oor),
            "emb_lin": Window(seconds=(-0.1, 0.0, 0.07), stream="emb", out_of_range=oor),
            "emb_idx": Window(steps=(-2, -1, 0, 1), stream="emb", out_of_range=oor),
            "half_mean": Window(seconds=(0.0, -0.05), method="window_mean", window=0.02,
                                stream="half", out_of_range=oor),
            "half_near": Window(seconds=np.linspace(-0.3, 0.3, 7), method="nearest",
                                stream="half", out_of_range=oor),
            "state": Window(seconds=np.arange(-3, 1) / 50, offset=0.003, out_of_range=oor),
            "act_long": Window(steps=range(-20, 280), stream="act", out_of_range=oor),
            "act_one": Window(steps=(0,), stream="act", out_of_range=oor)}
    kernel, twin = _kernel_and_twin(_call(spec), (store, episode, anchor), monkeypatch)
    _check_against_twin(spec, data, kernel, twin, oor)
    ref = reference_windows.sample_windows(data, episode, anchor,
                                           reference_windows.spec_dicts(spec))
    compare(kernel, ref, data, spec, f"kernel {oor} (run seed {RUN_SEED})")


@gpu
@pytest.mark.parametrize("oor", OUT_OF_RANGE)
def test_index_runs_inside_and_at_the_edges(oor, monkeypatch):
    """Index windows of consecutive steps (action chunks, histories) on unmasked streams, with
    rows whose steps all fall inside their episode and rows at its edges (a kernel may copy
    the former as one run of K samples), against the twin bit for bit and the reference:
    float32 D=14 (8-byte vectors), bfloat16 D=64 (16-byte), float16 D=3 (scalar), an
    offset; a window of gapped steps and one on a masked stream beside them. Both kinds of
    rows occur."""
    _need_gpu()
    rng = rng_for(f"runs-{oor}")
    streams = {"act": (500, 14, np.float32), "emb": (100, 64, ml_dtypes.bfloat16),
               "tri": (400, 3, np.float16), "masked": (300, 2, np.float32)}
    data = make_dataset(rng, E=6, streams=streams, masked=("masked",))
    store = _store(data)
    episode, anchor = random_anchors(rng, data, 257, reference="act")
    spec = {"chunk": Window(steps=range(50), stream="act", out_of_range=oor),
            "hist": Window(steps=range(-3, 1), stream="act", out_of_range=oor),
            "ahead": Window(steps=(5, 6, 7), stream="emb", out_of_range=oor),
            "tri": Window(steps=range(-1, 20), stream="tri", offset=0.004, out_of_range=oor),
            "gaps": Window(steps=(0, 2, 4), stream="act", out_of_range=oor),
            "masked": Window(steps=range(4), stream="masked", out_of_range=oor)}
    kernel, twin = _kernel_and_twin(_call(spec), (store, episode, anchor), monkeypatch)
    _check_against_twin(spec, data, kernel, twin, f"runs {oor}")
    ref = reference_windows.sample_windows(data, episode, anchor,
                                           reference_windows.spec_dicts(spec))
    compare(kernel, ref, data, spec, f"runs {oor} (run seed {RUN_SEED})")
    for name in ("chunk", "tri"):
        inside = np.asarray(kernel[name][1]).all(axis=1)
        assert 0 < inside.sum() < len(inside), (name, int(inside.sum()))


@gpu
def test_vmap_over_queries_and_over_the_store(monkeypatch):
    """vmap over episode / anchor (the store stays shared: S = 1) and over a stacked store
    (every operand [B, ...]: per-row store strides in the kernel)."""
    _need_gpu()
    rng = rng_for("vmap")
    data = make_dataset(rng, E=5, masked=("state", "wrench"))
    other = {n: dict(d, values=[(np.asarray(v, np.float64) * -1.5 + 0.25).astype(
        np.asarray(v).dtype) for v in d["values"]]) for n, d in data.items()}
    s1, s2 = _store(data), _store(other)
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), s1, s2)
    episode, anchor = random_anchors(rng, data, 64)
    spec = every_method_spec("nan")
    over_queries = lambda s, e, a: jax.vmap(_call(spec), in_axes=(None, 0, 0))(  # noqa: E731
        s, e.reshape(8, 8), a.reshape(8, 8))
    kernel, twin = _kernel_and_twin(over_queries, (s1, episode, anchor), monkeypatch)
    flat = {n: tuple(x.reshape((64,) + x.shape[2:]) for x in v) for n, v in kernel.items()}
    _check_against_twin(spec, data, flat,
                        {n: tuple(x.reshape((64,) + x.shape[2:]) for x in v)
                         for n, v in twin.items()}, "vmap queries")
    over_store = jax.vmap(_call(spec), in_axes=(0, 0, 0))
    e2, a2 = episode.reshape(2, 32), anchor.reshape(2, 32)
    kernel, twin = _kernel_and_twin(over_store, (stacked, e2, a2), monkeypatch)
    for i, d in enumerate((data, other)):
        k_i = {n: tuple(x[i] for x in v) for n, v in kernel.items()}
        t_i = {n: tuple(x[i] for x in v) for n, v in twin.items()}
        _check_against_twin(spec, d, k_i, t_i, f"vmap store {i}")
        ref = reference_windows.sample_windows(d, e2[i], a2[i],
                                               reference_windows.spec_dicts(spec))
        compare(k_i, ref, d, spec, f"vmap store {i} (run seed {RUN_SEED})")


@gpu
def test_grad_and_determinism(monkeypatch):
    """grad w.r.t. the store's values runs with the kernel forward (the twin's JVP) and
    equals the twin's; two runs of one executable are bitwise equal."""
    _need_gpu()
    rng = rng_for("grad")
    data = make_dataset(rng, E=5, masked=("state",))
    store = _store(data)
    episode, anchor = random_anchors(rng, data, 48)
    spec = {k: w for k, w in every_method_spec("zero").items() if k != "emb"}  # float32 streams

    def loss(values, s, e, a):
        s = s.replace(state=s["state"].replace(values=values))
        out = sample_windows(s, e, a, spec)
        return sum(jnp.sum(jnp.where(o.valid[..., None], o.values, 0.0) ** 2)
                   for o in out.values())

    grad = lambda v, s, e, a: jax.grad(loss)(v, s, e, a)  # noqa: E731
    args = (store["state"].values, store, episode, anchor)
    kernel, twin = _kernel_and_twin(grad, args, monkeypatch)
    assert np.isfinite(kernel).all() and np.abs(kernel).sum() > 0
    np.testing.assert_allclose(kernel, twin, rtol=1e-5, atol=1e-5)
    monkeypatch.delenv(FORCE_JNP_ENV, raising=False)
    with jax.default_device(device("gpu")):
        f = jax.jit(_call(every_method_spec("clamp")))
        runs = [jax.tree.map(np.asarray, f(store, episode, anchor)) for _ in range(2)]
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1])):
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


@gpu
def test_edges_through_the_primitive(monkeypatch):
    """Shapes a store never makes but the kernel must survive: a stream without samples
    (N = 0), a store without episodes (E = 0), no rows (B = 0), no features (D = 0)."""
    _need_gpu()
    from jax_robocache.episodes.windows_twin import INDEX, TIME, WindowParams
    op = windows_mod._op
    time_p = WindowParams(TIME, (0.0, -0.1), 0, 0.0, None, 0.0, 1, False, None)
    idx_p = WindowParams(INDEX, (-1, 0, 1), -1, 0.0, None, 0.0, 0, False, None)
    cases = {
        "N=0": (3, 0, 4, 2), "E=0": (3, 5, 0, 2), "B=0": (0, 5, 2, 2), "D=0": (3, 5, 2, 0)}
    for label, (B, N, E, D) in cases.items():
        rng = rng_for(label)
        values = rng.normal(size=(1, N, D)).astype(np.float32)
        times = np.sort(rng.uniform(0, 1, (1, N))).astype(np.float32)
        offsets = np.linspace(0, N, E + 1).astype(np.int32)[None]
        mask = np.zeros((1, 0), bool)
        episode = rng.integers(-1, E + 1, B).astype(np.int32)
        anchor = rng.uniform(0, 1, B).astype(np.float32)
        args = (episode, anchor, values, times, offsets, mask, values, times, offsets, mask)
        fn = lambda *a: op.prim.bind(*a, windows=(time_p, idx_p))  # noqa: E731
        # XLA may fold a call whose every result is empty (B = 0) into constants.
        kernel, twin = _kernel_and_twin(fn, args, monkeypatch, calls=(0, 1) if B == 0 else (1,))
        for k, (got, want) in enumerate(zip(kernel, twin)):
            np.testing.assert_array_equal(got, want, err_msg=f"{label} output {k}")


X64_SCRIPT = r"""
import jax, numpy as np, os, re
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
from jax_robocache import EpisodeStore, Window, sample_windows
rng = np.random.default_rng(int(os.environ["SEED"]))
E = 5
lengths = rng.integers(0, 40, E)
times = [1.7e9 + np.cumsum(rng.uniform(0.015, 0.025, n)) for n in lengths]  # epoch float64
values = [rng.normal(size=(n, 3)) for n in lengths]
store = EpisodeStore.from_episodes({"s": values}, {"s": times})
assert store["s"].times.dtype == jnp.float64
spec = {"lin": Window(seconds=(-0.03, 0.0, 0.011), stream="s"),
        "prev": Window(seconds=(0.0,), method="previous", stream="s", out_of_range="nan"),
        "idx": Window(steps=(-1, 0, 1), stream="s", out_of_range="zero")}
episode = rng.integers(-1, E + 1, 64).astype(np.int32)
anchor = rng.uniform(-0.1, 0.9, 64)
def run():
    f = jax.jit(lambda s, e, a: {k: tuple(v) for k, v in sample_windows(s, e, a, spec).items()})
    return f.lower(store, episode, anchor).compile().as_text(), jax.tree.map(np.asarray, f(store, episode, anchor))
hlo, kernel = run()
assert len(re.findall('custom_call_target="robocache_sample_windows"', hlo)) == 1
os.environ["JAX_ROBOCACHE_FORCE_JNP"] = "1"
hlo, twin = run()
assert "robocache_sample_windows" not in hlo
for name in spec:
    for k, (a, b) in enumerate(zip(kernel[name], twin[name])):
        if name == "lin" and k == 0:
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-13, equal_nan=True)
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"{name} output {k}")
print("x64 kernel ok")
"""


@gpu
def test_float64_times_under_x64():
    """x64: float64 anchors and times (the kernel's double instantiation) and float64 values."""
    _need_gpu()
    env = dict(os.environ, SEED=str(RUN_SEED))
    env.pop(FORCE_JNP_ENV, None)
    proc = subprocess.run([sys.executable, "-c", X64_SCRIPT], capture_output=True, text=True,
                          env=env, cwd=os.getcwd(), timeout=600)
    assert proc.returncode == 0 and "x64 kernel ok" in proc.stdout, (
        f"run seed {RUN_SEED}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


# -- on any machine: the CUDA lowering's wiring ------------------------------------
def _cuda_text(fn, *args):
    return jax.jit(fn).trace(*args).lower(lowering_platforms=("cuda",)).as_text()


def test_cuda_lowering_one_custom_call_with_attributes(monkeypatch):
    """As if the kernels were registered: one custom call for all windows, with one attribute
    entry per window (sorted by name) and every delta; the twin beyond MAX_WINDOW_ENTRIES."""
    monkeypatch.setattr(_extension, "has_target", lambda name: True)
    monkeypatch.delenv(FORCE_JNP_ENV, raising=False)
    rng = rng_for("lowering")
    data = make_dataset(rng, E=3, masked=("state",))
    store = _store(data)
    episode, anchor = random_anchors(rng, data, 8)
    spec = {"state": Window(seconds=(-0.02, 0.0), tolerance=0.5, out_of_range="zero"),
            "action": Window(steps=range(3), offset=0.25),
            "wrench": Window(seconds=(0.0,), method="window_mean", window=0.02)}
    text = _cuda_text(_call(spec), store, episode, anchor)
    calls = [ln for ln in text.splitlines() if f"stablehlo.custom_call @{TARGET}" in ln]
    assert len(calls) == 1, calls
    call = calls[0]
    # windows sorted by name: action (index), state (time, zero), wrench (window_mean)
    def attr(name):
        found = re.search(rf"\b{name} = dense<\[?([^\]>]*)\]?>", call)
        assert found, (name, call)
        return [float(x) for x in found.group(1).split(",")]

    assert attr("kinds") == [1, 0, 0]
    assert attr("methods") == [-1, 0, 4]
    assert attr("out_of_range") == [0, 3, 0]
    assert attr("masked") == [0, 1, 0]
    assert attr("sizes") == [3, 2, 1]
    assert attr("time_offsets") == [0.25, 0, 0]
    assert attr("windows") == [0, 0, 0.02]
    assert attr("deltas") == [0, 1, 2, -0.02, 0, 0]
    assert "tolerances = dense<[0x7FF0000000000000, 5.000000e-01, 0x7FF0000000000000]>" in call
    assert "num_batch_dims" not in call  # one device: the plain call
    too_many = {"a": Window(steps=range(windows_mod.MAX_WINDOW_ENTRIES + 1), stream="action")}
    text = _cuda_text(_call(too_many), store, episode, anchor)
    assert f"@{TARGET}" not in text  # the twin


def test_cuda_lowering_kernel_by_default_twin_when_turned_off(monkeypatch):
    """The kernel is the GPU default; JAX_ROBOCACHE_SAMPLE_WINDOWS_KERNEL=0 lowers the twin."""
    monkeypatch.setattr(_extension, "has_target", lambda name: True)
    monkeypatch.delenv(FORCE_JNP_ENV, raising=False)
    rng = rng_for("lowering default")
    data = make_dataset(rng, E=2)
    episode, anchor = random_anchors(rng, data, 4)
    args = (_store(data), episode, anchor)
    spec = {"action": Window(steps=range(3))}
    assert _cuda_text(_call(spec), *args).count(f"@{TARGET}") == 1
    monkeypatch.setenv(KERNEL_ENV, "0")
    assert f"@{TARGET}" not in _cuda_text(_call(dict(spec)), *args)


def _four_device_lowering(monkeypatch, label):
    """(mesh of 4 CPU devices over "rows", store, episode [8], anchor [8]) with the CUDA
    lowering forced on (the kernel's target pretended registered)."""
    devs = jax.devices("cpu")
    if len(devs) < 4:
        pytest.skip("needs 4 CPU devices")
    monkeypatch.setattr(_extension, "has_target", lambda name: True)
    monkeypatch.delenv(FORCE_JNP_ENV, raising=False)
    rng = rng_for(label)
    data = make_dataset(rng, E=3)
    episode, anchor = random_anchors(rng, data, 8)
    return jax.sharding.Mesh(np.array(devs[:4]), ("rows",)), _store(data), episode, anchor


def test_cuda_lowering_partitioned_program_keeps_the_store_replicated(monkeypatch):
    """Over several devices the CUDA lowering runs the twin: XLA's batch partitioner slices
    axis 0 of every operand, which would copy the shared store to every row."""
    from jax.sharding import NamedSharding, PartitionSpec as P
    mesh, store, episode, anchor = _four_device_lowering(monkeypatch, "partitioned")
    spec = {"action": Window(steps=range(3))}
    with jax.set_mesh(mesh):
        e = jax.device_put(episode, NamedSharding(mesh, P("rows")))
        a = jax.device_put(anchor, NamedSharding(mesh, P("rows")))
        s = jax.device_put(store, NamedSharding(mesh, P()))
        text = _cuda_text(_call(spec), s, e, a)
    assert f"@{TARGET}" not in text


def test_cuda_lowering_inside_shard_map_is_the_kernel(monkeypatch):
    """Inside shard_map (store P(), queries split) each device's body gets the plain custom
    call: the way to run the kernel on several GPUs with the store replicated."""
    from jax.sharding import PartitionSpec as P
    mesh, store, episode, anchor = _four_device_lowering(monkeypatch, "shard_map")
    spec = {"action": Window(steps=range(3)), "state": Window(seconds=(0.0,))}
    fn = jax.shard_map(_call(spec), mesh=mesh, in_specs=(P(), P("rows"), P("rows")),
                       out_specs=P("rows"))
    shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype),
                          (store, episode, anchor))
    text = _cuda_text(fn, *shapes)
    calls = [ln for ln in text.splitlines() if f"stablehlo.custom_call @{TARGET}" in ln]
    assert len(calls) == 1 and "num_batch_dims" not in calls[0], calls
    # the body sees its 2 rows and the whole store
    assert "tensor<2xi32>" in calls[0], calls[0]
