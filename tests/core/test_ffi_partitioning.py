"""The batch-partitioned FFI lowering of ``FfiOp``, exercised on CPU devices.

On GPUs our ops lower to FFI custom calls that XLA must partition along the
batch axis (see ``jax_robocache._core.partitioning.batch_partitioned_ffi_call``). The CUDA kernels
need a GPU, so this test compiles a tiny CPU FFI target with the same operand
convention (tests/ffi_probe/probe.cc: operands ``[B or 1, ...]``, outputs
``[B, ...]``), routes an ``FfiOp``'s CUDA lowering to it on CPU, and checks on 4
host devices that the call runs per shard (no collectives), that shared
``[1, ...]`` operands reach every shard intact, that the workspace result is
partitioned, and that single-device and ``shard_map`` lowerings still work.
Skipped when no C++ compiler is available.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from jax_robocache._core import extension as _extension, primitive as _primitive
from jax_robocache.jax_compat import ShapedArray, mlir

SOURCE = Path(__file__).parent / "ffi_probe" / "probe.cc"
COLLECTIVES = ("all-gather", "all-to-all", "collective-permute", "all-reduce", "reduce-scatter")
TARGETS = {"plain": ("robocache_test_probe", "RobocacheProbe"),
           "workspace": ("robocache_test_probe_ws", "RobocacheProbeWorkspace")}


def _twin(x, y):
    B = max(x.shape[0], y.shape[0])
    return (jnp.broadcast_to(x.sum(1), (B,)) + 1000 * jnp.broadcast_to(y.sum(1), (B,)),)


def _abstract_eval(x, y):
    return (ShapedArray((max(x.shape[0], y.shape[0]),), jnp.float32),)


@pytest.fixture(scope="module")
def probe_ops(tmp_path_factory):
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        pytest.skip("no C++ compiler for the CPU FFI probe")
    library = tmp_path_factory.mktemp("ffi_probe") / "libprobe.so"
    build = subprocess.run([compiler, "-O1", "-shared", "-fPIC", "-std=c++17", "-w",
                            f"-I{jax.ffi.include_dir()}", str(SOURCE), "-o", str(library)],
                           capture_output=True, text=True)
    if build.returncode:
        pytest.skip(f"could not build the CPU FFI probe: {build.stderr[-500:]}")
    lib = ctypes.cdll.LoadLibrary(str(library))
    ops = {}
    for kind, (target, symbol) in TARGETS.items():
        jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(lib, symbol)),
                                    platform="cpu")
        jax.ffi.register_ffi_target_as_batch_partitionable(target)
        op = _primitive.FfiOp(
            target, twin=_twin, abstract_eval=_abstract_eval, ffi_target=target,
            workspace_bytes=(lambda x, y: 24) if kind == "workspace" else None)
        del _primitive.REGISTRY[target]  # a test op: not one of the package's ops
        mlir.register_lowering(op.prim, op._cuda_lowering, platform="cpu")  # the FFI path
        ops[kind] = op
    return ops


@pytest.fixture
def ops(probe_ops, monkeypatch):
    for target, _ in TARGETS.values():  # as if the CUDA module had registered them
        monkeypatch.setitem(_extension.TARGETS, target, None)
    return probe_ops


def four_devices():
    devs = jax.devices("cpu")
    if len(devs) < 4:
        pytest.skip(f"needs 4 CPU devices, found {len(devs)}")
    return devs[:4]


def inputs(rng, B=8):
    """Small integers: every sum is exact in float32, so results compare bitwise."""
    x = rng.integers(-9, 10, (B, 3)).astype(np.float32)
    return x, {"shared": rng.integers(-9, 10, (1, 2)).astype(np.float32),
               "per-episode": rng.integers(-9, 10, (B, 2)).astype(np.float32)}


@pytest.mark.parametrize("kind", sorted(TARGETS))
@pytest.mark.parametrize("axis_type", [AxisType.Explicit, AxisType.Auto])
def test_custom_call_runs_per_shard(ops, rng, kind, axis_type):
    op = ops[kind]
    mesh = jax.sharding.Mesh(np.array(four_devices()), ("episodes",), axis_types=(axis_type,))
    x, ys = inputs(rng)
    f = jax.jit(lambda a, b: op.bind(a, b)[0])
    with jax.set_mesh(mesh):
        xs = jax.device_put(x, NamedSharding(mesh, P("episodes")))
        for name, y in ys.items():
            lowered = f.lower(xs, y)
            assert "num_batch_dims" in lowered.as_text(), name
            hlo = lowered.compile().as_text()
            assert f'custom_call_target="{TARGETS[kind][0]}"' in hlo, name
            found = [c for c in COLLECTIVES if c in hlo]
            assert not found, f"{kind}/{name}: collectives {found}"
            out = f(xs, y)
            assert tuple(out.sharding.spec)[:1] == ("episodes",), (name, out.sharding)
            np.testing.assert_array_equal(np.asarray(out), np.asarray(_twin(x, y)[0]),
                                          err_msg=f"{kind}/{name}")


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_single_device_and_shard_map(ops, rng, kind):
    op = ops[kind]
    x, ys = inputs(rng)
    devs = four_devices()
    mesh = jax.sharding.Mesh(np.array(devs), ("episodes",))
    for name, y in ys.items():
        want = np.asarray(_twin(x, y)[0])
        single = jax.jit(lambda a, b: op.bind(a, b)[0])
        assert "num_batch_dims" not in single.lower(x, y).as_text()  # nothing to partition
        # The probe is a CPU FFI target: on a GPU machine the default device is a GPU.
        with jax.default_device(devs[0]):
            np.testing.assert_array_equal(np.asarray(single(x, y)), want)
        y_spec = P() if y.shape[0] == 1 else P("episodes")
        mapped = jax.jit(jax.shard_map(lambda a, b: op.bind(a, b)[0], mesh=mesh,
                                       in_specs=(P("episodes"), y_spec),
                                       out_specs=P("episodes")))
        np.testing.assert_array_equal(np.asarray(mapped(x, y)), want,
                                      err_msg=f"{kind}/{name} in shard_map")
