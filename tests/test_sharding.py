"""Batch sharding: every op runs per shard (no gathers), on CPU host devices and on several GPUs.

Each case is called under ``jit`` on inputs sharded along the batch (episode /
cloud) axis, for both mesh axis types; the compiled program must hold no
collective, every output must stay sharded on that axis and equal the
single-device result (bitwise) and the independent numpy reference. The same
ops also run inside ``jax.shard_map``. Shared operands (a common clock, default
lengths, times shared by all episodes) are part of the cases on purpose: a
batch-partitioned custom call slices every operand along axis 0.
"""

from __future__ import annotations

import re
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

import reference
import reference_align
import reference_p2v
import reference_voxel
from episodes import episodes
from exact import assert_identical
from jax_robocache._core import extension as _extension
from jax_robocache import Stream, align, fuse_multimodal, points_to_voxels, resample, voxelize
from jax_robocache._core.primitive import FORCE_JNP_ENV
from test_align import make_stream
from test_points_to_voxels import RANGE as P2V_RANGE, SIZE as P2V_SIZE, make_points
from test_voxelize import RANGE as VOX_RANGE, VOXEL, clouds

COLLECTIVES = ("all-gather", "all-to-all", "collective-permute", "all-reduce", "reduce-scatter")


def devices_of(platform):
    try:
        devs = jax.devices(platform)
    except RuntimeError:
        devs = []
    if len(devs) < 2:
        pytest.skip(f"needs 2+ {platform} devices, found {len(devs)}")
    if platform == "gpu":
        from conftest import gpu_available
        if not gpu_available():
            pytest.skip("GPU kernels not available")
    return devs


@pytest.fixture(params=["cpu", "gpu"])
def mesh_devices(request):
    devs = devices_of(request.param)
    n = 4 if len(devs) >= 4 else 2
    return request.param, devs[:n]


class Case(NamedTuple):
    name: str
    fn: Callable  # positional batch-leading arrays -> pytree of outputs
    args: tuple  # numpy arrays, axis 0 = the batch
    ref: list  # numpy reference, one per output leaf (jax.tree.leaves order)
    grad_arg: int | None  # argument to differentiate the float outputs' sum by, or None


# -- cases, one function per op -------------------------------------------------
def resample_cases(rng, B):
    values, times, queries, lengths = episodes(rng, B, 40, 6, 15)
    clock = np.linspace(-0.5, 1.0, 15, dtype=np.float32)
    return [
        Case("resample per-episode", lambda v, t, q, n: resample(v, t, q, lengths=n),
             (values, times, queries, lengths),
             [reference.resample(values, times, queries, lengths)[0]], 0),
        Case("resample shared-clock",
             lambda v, t, n: resample(v, t, clock, lengths=n, method="previous"),
             (values, times, lengths),
             [reference.resample(values, times, clock, lengths, "previous")[0]], 0),
    ]


def _align_leaves(ref: dict) -> list:
    """reference_align.align's result in AlignResult's leaf order (values, valid, age)."""
    names = sorted(ref)
    return [ref[n][i] for i in range(3) for n in names]


def align_cases(rng, B):
    v_lin, t_lin, n_lin = make_stream(rng, B, 30, 3)
    v_rot, t_rot, n_rot = make_stream(rng, B, 20, 4, quaternions=True)
    v_ft, t_ft, n_ft = make_stream(rng, B, 80, 6)
    v_cam, t_cam, n_cam = make_stream(rng, B, 12, 5, ragged=False)
    t_cam = t_cam[0]  # one camera clock shared by every episode
    n_cam = rng.integers(0, 13, B).astype(np.int32)
    clock = np.linspace(-0.1, 1.1, 17, dtype=np.float32)  # the shared query clock
    meta = dict(joints=dict(method="linear"), rot=dict(method="slerp", tolerance=0.08),
                ft=dict(method="window_mean", window=0.04, offset=-0.01),
                cam=dict(method="previous", tolerance=0.1))

    def streams(v1, t1, n1, v2, t2, n2, v3, t3, n3, v4, n4):
        return {"joints": Stream(v1, t1, n1, **meta["joints"]),
                "rot": Stream(v2, t2, n2, **meta["rot"]),
                "ft": Stream(v3, t3, n3, **meta["ft"]),
                "cam": Stream(v4, t_cam, n4, **meta["cam"])}

    args = (v_lin, t_lin, n_lin, v_rot, t_rot, n_rot, v_ft, t_ft, n_ft, v_cam, n_cam)
    ref = reference_align.align(
        {"joints": dict(values=v_lin, times=t_lin, lengths=n_lin, **meta["joints"]),
         "rot": dict(values=v_rot, times=t_rot, lengths=n_rot, **meta["rot"]),
         "ft": dict(values=v_ft, times=t_ft, lengths=n_ft, **meta["ft"]),
         "cam": dict(values=v_cam, times=t_cam, lengths=n_cam, **meta["cam"])}, clock, "nan")
    queries = rng.uniform(-0.1, 1.1, (B, 9)).astype(np.float32)
    v_pro, t_pro, _ = make_stream(rng, B, 25, 2, ragged=False)  # fuse_multimodal: no lengths
    v_frc, t_frc, _ = make_stream(rng, B, 60, 3, ragged=False)
    fused = reference_align.align({k: dict(values=v, times=t) for k, v, t in (
        ("vision", v_cam, t_cam), ("proprio", v_pro, t_pro), ("force", v_frc, t_frc))}, queries)
    return [
        Case("align 4 streams shared-clock",
             lambda *a: align(streams(*a), clock, out_of_range="nan"), args,
             _align_leaves(ref), 0),
        Case("fuse_multimodal per-episode queries",
             lambda v1, v2, v3, t2, t3, q: fuse_multimodal(v1, t_cam, v2, t2, v3, t3, q),
             (v_cam, v_pro, v_frc, t_pro, t_frc, queries),
             [np.concatenate([fused[k][0] for k in ("vision", "proprio", "force")], -1)], 1),
    ]


def voxelize_cases(rng, B):
    points, features, lengths = clouds(rng, B, 150, 3)
    features = np.asarray(features)
    kw = dict(voxel_size=VOXEL, point_range=VOX_RANGE)
    return [
        Case("voxelize count (default lengths)", lambda p: voxelize(p, **kw), (points,),
             [reference_voxel.voxelize(points, None, None, VOXEL, VOX_RANGE, "count")], None),
        Case("voxelize mean", lambda p, f, n: voxelize(p, f, mode="mean", lengths=n, **kw),
             (points, features, lengths),
             [reference_voxel.voxelize(points, features, lengths, VOXEL, VOX_RANGE, "mean")], 1),
    ]


def p2v_cases(rng, B):
    N = 120
    points = make_points(rng, (B,), N, clustered=True)
    features = rng.normal(size=(B, N, 2)).astype(np.float32)
    lengths = rng.integers(0, N + 1, B).astype(np.int32)
    kw = dict(voxel_size=P2V_SIZE, point_range=P2V_RANGE, max_voxels=12, max_points_per_voxel=5)

    def ref(p, f, n):
        out = reference_p2v.points_to_voxels(p, f, n, P2V_SIZE, P2V_RANGE, 12, 5)
        return [out[k] for k in ("voxels", "coords", "num_points", "num_voxels",
                                 "point_to_voxel")]

    return [
        Case("points_to_voxels features+lengths",
             lambda p, f, n: points_to_voxels(p, f, lengths=n, **kw), (points, features, lengths),
             ref(points, features, lengths), 0),
        Case("points_to_voxels xyz only (default lengths)", lambda p: points_to_voxels(p, **kw),
             (points,), ref(points, None, None), None),
    ]


CASES = {"resample": resample_cases, "align": align_cases, "voxelize": voxelize_cases,
         "points_to_voxels": p2v_cases}


# -- checks ---------------------------------------------------------------------
def assert_close_to_reference(out, ref, err):
    out, ref = np.asarray(out), np.asarray(ref)
    assert out.shape == ref.shape, (err, out.shape, ref.shape)
    if not jnp.issubdtype(out.dtype, jnp.floating):
        np.testing.assert_array_equal(out, ref, err_msg=err)
        return
    out = out.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref), err_msg="NaN pattern " + err)
    np.testing.assert_array_equal(np.isinf(out), np.isinf(ref), err_msg="inf pattern " + err)
    finite = np.isfinite(ref)
    scale = max(float(np.abs(ref[finite]).max(initial=1.0)), 1.0)
    np.testing.assert_allclose(out[finite], ref[finite], rtol=1e-5, atol=1e-5 * scale,
                               err_msg=err)


def float_sum(tree):
    """Sum of the finite entries of every float output (NaN/inf entries carry no gradient)."""
    leaves = [leaf.astype(jnp.float32) for leaf in jax.tree.leaves(tree)
              if jnp.issubdtype(leaf.dtype, jnp.floating)]
    return sum(jnp.where(jnp.isfinite(x), x, 0.0).sum() for x in leaves)


def check_case(platform, batch, case, single):
    sharded = [jax.device_put(a, batch) for a in case.args]
    jitted = jax.jit(case.fn)
    out = jitted(*sharded)
    hlo = jitted.lower(*sharded).compile().as_text()
    found = [c for c in COLLECTIVES if c in hlo]
    assert not found, f"{case.name}: collectives {found} in the compiled HLO"
    if platform == "gpu":
        assert 'custom_call_target="robocache_' in hlo, f"{case.name}: no CUDA kernel in the HLO"
    leaves, single_leaves = jax.tree.leaves(out), jax.tree.leaves(single)
    assert len(leaves) == len(single_leaves) == len(case.ref), case.name
    for k, (leaf, one, ref) in enumerate(zip(leaves, single_leaves, case.ref)):
        err = f"{case.name}, output leaf {k}"
        assert tuple(leaf.sharding.spec)[:1] == ("episodes",), (err, leaf.sharding)
        # bitwise: the same per-episode computation on a shard as on one device
        assert_identical(leaf, one, err_msg=err)
        assert_close_to_reference(leaf, ref, err)
    if case.grad_arg is not None:  # gradients keep the batch sharding too
        grad = jax.jit(jax.grad(lambda *a: float_sum(case.fn(*a)), argnums=case.grad_arg))(
            *sharded)
        assert tuple(grad.sharding.spec)[:1] == ("episodes",), (case.name, grad.sharding)
        assert np.isfinite(np.asarray(grad)).all(), case.name


@pytest.mark.parametrize("op", sorted(CASES))
@pytest.mark.parametrize("axis_type", [AxisType.Explicit, AxisType.Auto])
def test_batch_sharded_runs_locally(mesh_devices, rng, axis_type, op):
    platform, devs = mesh_devices
    mesh = jax.sharding.Mesh(np.array(devs), ("episodes",), axis_types=(axis_type,))
    batch = NamedSharding(mesh, P("episodes"))
    cases = CASES[op](rng, 2 * len(devs))
    singles = [case.fn(*[jax.device_put(a, devs[0]) for a in case.args]) for case in cases]
    with jax.set_mesh(mesh):  # explicit sharding is used under a mesh context
        for case, single in zip(cases, singles):
            check_case(platform, batch, case, single)


@pytest.mark.parametrize("op", sorted(CASES))
def test_inside_shard_map(mesh_devices, rng, op):
    platform, devs = mesh_devices
    mesh = jax.sharding.Mesh(np.array(devs), ("episodes",))
    for case in CASES[op](rng, 2 * len(devs)):
        f = jax.jit(jax.shard_map(case.fn, mesh=mesh, in_specs=P("episodes"),
                                  out_specs=P("episodes")))
        for k, (leaf, ref) in enumerate(zip(jax.tree.leaves(f(*case.args)), case.ref)):
            assert_close_to_reference(leaf, ref, f"{case.name} in shard_map, output leaf {k}")


@pytest.mark.parametrize("op", sorted(CASES))
def test_cuda_lowering_is_batch_partitioned(monkeypatch, rng, op):
    """Checked on any machine: the CUDA lowering (StableHLO for "cuda", as if the kernels were
    registered) of a batch-sharded call tells XLA how to partition each custom call: the
    ``num_batch_dims`` attribute for the partitioner, a Shardy rule, and every operand
    broadcast to the full batch (the partitioner slices axis 0 of each)."""
    devs = devices_of("cpu")[:4]
    if op in ("voxelize", "points_to_voxels") and not _extension.STATUS.compiled:
        pytest.skip("sizing the sort workspace needs the compiled CUDA module (built in CI)")
    monkeypatch.setattr(_extension, "has_target", lambda name: True)
    monkeypatch.delenv(FORCE_JNP_ENV, raising=False)
    mesh = jax.sharding.Mesh(np.array(devs), ("episodes",))
    B = 2 * len(devs)
    for case in CASES[op](rng, B):
        with jax.set_mesh(mesh):
            sharded = [jax.device_put(a, NamedSharding(mesh, P("episodes"))) for a in case.args]
            text = jax.jit(case.fn).trace(*sharded).lower(lowering_platforms=("cuda",)).as_text()
        calls = [line for line in text.splitlines() if "stablehlo.custom_call @robocache_" in line]
        assert calls, f"{case.name}: no robocache custom call in the CUDA lowering"
        for call in calls:
            assert 'num_batch_dims = "1"' in call, case.name
            if jax.config.jax_use_shardy_partitioner:
                assert "sdy.sharding_rule" in call, case.name
            signature = call[call.rindex(": (") :]
            leading = [t.split("x")[0] for t in re.findall(r"tensor<([^>]*)>", signature)]
            assert all(d == str(B) for d in leading), (case.name, signature)
        single = jax.jit(case.fn).trace(*case.args).lower(lowering_platforms=("cuda",))
        assert "num_batch_dims" not in single.as_text(), f"{case.name}: one device, plain call"
