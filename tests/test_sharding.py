"""Batch sharding: ops run per shard (no gathers), on CPU host devices and on several GPUs."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

import reference
from episodes import episodes
from jax_robocache import resample

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


def resample_cases(rng, n_dev):
    B = 2 * n_dev
    values, times, queries, lengths = episodes(rng, B, 40, 6, 15)
    clock = np.linspace(-0.5, 1.0, 15, dtype=np.float32)
    return [
        ("per-episode", lambda v, t, q, n: resample(v, t, q, lengths=n),
         (values, times, queries, lengths),
         reference.resample(values, times, queries, lengths)[0]),
        ("shared-clock", lambda v, t, n: resample(v, t, clock, lengths=n, method="previous"),
         (values, times, lengths),
         reference.resample(values, times, clock, lengths, "previous")[0]),
    ]


@pytest.mark.parametrize("axis_type", [AxisType.Explicit, AxisType.Auto])
def test_batch_sharded_runs_locally(mesh_devices, rng, axis_type):
    platform, devs = mesh_devices
    mesh = jax.sharding.Mesh(np.array(devs), ("episodes",), axis_types=(axis_type,))
    batch = NamedSharding(mesh, P("episodes"))
    cases = resample_cases(rng, len(devs))
    singles = [fn(*[jax.device_put(a, devs[0]) for a in args]) for _, fn, args, _ in cases]
    with jax.set_mesh(mesh):  # explicit sharding is used under a mesh context
        check_cases(platform, batch, cases, singles)


def check_cases(platform, batch, cases, singles):
    for (name, fn, args, ref), single in zip(cases, singles):
        sharded = [jax.device_put(a, batch) for a in args]
        jitted = jax.jit(fn)
        out = jitted(*sharded)
        hlo = jitted.lower(*sharded).compile().as_text()
        found = [c for c in COLLECTIVES if c in hlo]
        assert not found, f"{name}: collectives {found} in the compiled HLO"
        if platform == "gpu":
            assert "robocache_resample" in hlo
        assert out.sharding.spec[0] == "episodes", (name, out.sharding)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(single))
        np.testing.assert_allclose(np.nan_to_num(np.asarray(out)), np.nan_to_num(ref),
                                   rtol=1e-5, atol=1e-5)
        # gradients keep the batch sharding too
        grad = jax.jit(jax.grad(lambda *a: fn(*a).sum()))(*sharded)
        assert grad.sharding.spec[0] == "episodes"


def test_inside_shard_map(mesh_devices, rng):
    platform, devs = mesh_devices
    mesh = jax.sharding.Mesh(np.array(devs), ("episodes",))
    values, times, queries, lengths = episodes(rng, 2 * len(devs), 30, 4, 9)
    f = jax.jit(jax.shard_map(lambda v, t, q, n: resample(v, t, q, lengths=n), mesh=mesh,
                              in_specs=P("episodes"), out_specs=P("episodes")))
    out = f(values, times, queries, lengths)
    ref, _ = reference.resample(values, times, queries, lengths)
    np.testing.assert_allclose(np.nan_to_num(np.asarray(out)), np.nan_to_num(ref), rtol=1e-5,
                               atol=1e-5)
