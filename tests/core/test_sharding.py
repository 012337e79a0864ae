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

from references import resample as reference
from references import align as reference_align
from references import points_to_voxels as reference_p2v
from references import voxelize as reference_voxel
from exact import assert_identical
from jax_robocache._core import extension as _extension
from jax_robocache._core.primitive import FORCE_JNP_ENV
from jax_robocache.streams import align_cases, resample_cases
from jax_robocache.voxels import points_to_voxels_cases, voxelize_cases

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


# -- cases: the ops' catalogues, with a reference per case -------------------------
def _resample_ref(a, o):
    return [reference.resample(a["values"], a["times"], a["query_times"], a["lengths"],
                               o["method"], o["out_of_range"])[0]]


def _align_ref(a, o):
    """reference_align.align's result in AlignResult's leaf order (values, valid, age)."""
    ref = reference_align.align({n: dict(values=a[f"{n}.values"], times=a[f"{n}.times"],
                                         lengths=a.get(f"{n}.lengths"), **meta)
                                 for n, meta in o["streams"].items()},
                                a["query_times"], o["out_of_range"])
    names = sorted(ref)
    return [ref[n][i] for i in range(3) for n in names]


def _fuse_ref(a, o):
    ref = reference_align.align({k: dict(values=a[k], times=a[f"{k}_times"])
                                 for k in ("vision", "proprio", "force")}, a["target_times"])
    return [np.concatenate([ref[k][0] for k in ("vision", "proprio", "force")], -1)]


def _voxelize_ref(a, o):
    features = None if "features" not in a else np.asarray(a["features"])
    return [reference_voxel.voxelize(a["points"], features, a.get("lengths"), o["voxel_size"],
                                     o["point_range"], o["mode"])]


def _p2v_ref(a, o):
    out = reference_p2v.points_to_voxels(a["points"], a.get("features"), a.get("lengths"),
                                         o["voxel_size"], o["point_range"], o["max_voxels"],
                                         o["max_points_per_voxel"])
    return [out[k] for k in ("voxels", "coords", "num_points", "num_voxels", "point_to_voxel")]


#: op -> (catalogue, [(case name, reference, argument to differentiate by or None)]). Shared
#: operands (a common clock, a camera's timestamps, default lengths) are part of it on purpose.
CATALOGUES = {
    "resample": (resample_cases, [("linear_clamp", _resample_ref, 0),
                                  ("shared_clock", _resample_ref, 0)]),
    "align": (align_cases, [("shared_times", _align_ref, 0),
                            ("fuse_multimodal", _fuse_ref, 1)]),
    "voxelize": (voxelize_cases, [("count_points_only", _voxelize_ref, None),
                                  ("mean", _voxelize_ref, 1)]),
    "points_to_voxels": (points_to_voxels_cases, [("uniform", _p2v_ref, 0),
                                                  ("xyz_only", _p2v_ref, None)]),
}


def op_cases(op, rng, B):
    catalogue, entries = CATALOGUES[op]
    cases = []
    for name, ref, grad_arg in entries:
        call = catalogue.CASES[name].make(rng, B=B)
        fn, args = call.positional()
        cases.append(Case(f"{op} {name}", fn, args, ref(call.arrays, call.options), grad_arg))
    return cases


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


@pytest.mark.parametrize("op", sorted(CATALOGUES))
@pytest.mark.parametrize("axis_type", [AxisType.Explicit, AxisType.Auto])
def test_batch_sharded_runs_locally(mesh_devices, rng, axis_type, op):
    platform, devs = mesh_devices
    mesh = jax.sharding.Mesh(np.array(devs), ("episodes",), axis_types=(axis_type,))
    batch = NamedSharding(mesh, P("episodes"))
    cases = op_cases(op, rng, 2 * len(devs))
    singles = [case.fn(*[jax.device_put(a, devs[0]) for a in case.args]) for case in cases]
    with jax.set_mesh(mesh):  # explicit sharding is used under a mesh context
        for case, single in zip(cases, singles):
            check_case(platform, batch, case, single)


@pytest.mark.parametrize("op", sorted(CATALOGUES))
def test_inside_shard_map(mesh_devices, rng, op):
    platform, devs = mesh_devices
    mesh = jax.sharding.Mesh(np.array(devs), ("episodes",))
    for case in op_cases(op, rng, 2 * len(devs)):
        f = jax.jit(jax.shard_map(case.fn, mesh=mesh, in_specs=P("episodes"),
                                  out_specs=P("episodes")))
        for k, (leaf, ref) in enumerate(zip(jax.tree.leaves(f(*case.args)), case.ref)):
            assert_close_to_reference(leaf, ref, f"{case.name} in shard_map, output leaf {k}")


@pytest.mark.parametrize("op", sorted(CATALOGUES))
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
    for case in op_cases(op, rng, B):
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
