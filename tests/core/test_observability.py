"""Our ops in profiles and logs (FfiOp, jax_robocache/_core/primitive.py).

* Every op's custom call and jnp twin carry the name scope ``jax_robocache/<op>``:
  checked in the op metadata (``op_name``) of the compiled HLO on CPU, under jit,
  vmap and grad, and in the StableHLO locations of the CUDA custom call
  (cross-platform lowering, no GPU needed).
* The DEBUG logger ``jax_robocache`` reports, once per compiled shape, the lowering
  each op took (and why) and the workspace it reserved.
"""

from __future__ import annotations

import logging
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_robocache import Stream, align, points_to_voxels, resample, voxelize
from jax_robocache._core import primitive
from jax_robocache.voxels.voxelize import MODES as VOXELIZE_MODES

SEED = 2020
RANGE = (-4.0, -4.0, -1.0, 4.0, 4.0, 1.0)


def _streams_inputs(rng, B=2, S=40, T=16):
    times = np.sort(rng.uniform(0.0, 2.0, (B, S)), axis=1).astype(np.float32)
    values = rng.normal(size=(B, S, 3)).astype(np.float32)
    queries = np.sort(rng.uniform(0.0, 2.0, (B, T)), axis=1).astype(np.float32)
    return values, times, queries


def _cloud(rng, B=2, N=300):
    return rng.uniform(-5.0, 5.0, (B, N, 3)).astype(np.float32)


def _op_calls(rng):
    """op name -> (function, args) of one call of each op."""
    values, times, queries = _streams_inputs(rng)
    gyro = rng.normal(size=(2, 25, 2)).astype(np.float32)
    gyro_t = np.sort(rng.uniform(0.0, 2.0, (2, 25)), axis=1).astype(np.float32)
    points = _cloud(rng)
    feats = rng.normal(size=points.shape[:2] + (2,)).astype(np.float32)

    def do_align(v, t, g, gt, q):
        out = align({"pose": Stream(v, t), "gyro": Stream(g, gt, method="nearest")}, q)
        return out["pose"].values, out["gyro"].values

    return {
        "resample": (lambda v, t, q: resample(v, t, q), (values, times, queries)),
        "align": (do_align, (values, times, gyro, gyro_t, queries)),
        "voxelize": (lambda p, f: voxelize(p, f, voxel_size=0.5, point_range=RANGE,
                                           mode="mean"), (points, feats)),
        "points_to_voxels": (lambda p: points_to_voxels(p, voxel_size=0.5, point_range=RANGE,
                                                        max_voxels=64,
                                                        max_points_per_voxel=4).voxels,
                             (points,)),
    }


def _scoped_ops(hlo_text: str, op: str) -> list[str]:
    """The HLO instructions whose op metadata carries the name scope ``jax_robocache/<op>``."""
    return [line for line in hlo_text.splitlines()
            if re.search(r'op_name="[^"]*jax_robocache/%s[/)"]' % op, line)]


@pytest.mark.parametrize("op", ["resample", "align", "voxelize", "points_to_voxels"])
def test_compiled_hlo_carries_the_op_scope(op):
    fn, args = _op_calls(np.random.default_rng(SEED))[op]
    compiled = jax.jit(fn).lower(*args).compile().as_text()
    scoped = _scoped_ops(compiled, op)
    assert scoped, f"seed {SEED}: no instruction of {op} carries jax_robocache/{op}:\n{compiled}"
    # Another op's scope does not leak in.
    others = {"resample", "align", "voxelize", "points_to_voxels"} - {op}
    for other in others:
        assert not _scoped_ops(compiled, other), (op, other)


@pytest.mark.parametrize("op", ["resample", "voxelize"])
def test_scope_survives_vmap_and_grad(op):
    rng = np.random.default_rng(SEED)
    fn, args = _op_calls(rng)[op]
    vm = jax.jit(jax.vmap(fn)).lower(*(np.stack([a, a]) for a in args)).compile().as_text()
    assert _scoped_ops(vm, op), f"seed {SEED}: vmap lost jax_robocache/{op}"
    # The JVP of the twin (the backward pass) is scoped too; the gradient is taken with
    # respect to the values (resample) and the features (voxelize mean).
    argnum = 0 if op == "resample" else 1
    grad = jax.grad(lambda *a: jnp.sum(fn(*a) ** 2), argnums=argnum)
    grad_hlo = jax.jit(grad).lower(*args).compile().as_text()
    assert _scoped_ops(grad_hlo, op), f"seed {SEED}: grad lost jax_robocache/{op}"


def test_eager_call_is_scoped():
    """A bind outside any trace runs the primitive's own cached jit (the public functions
    stage their array work through ``eager.staged`` instead): that program is scoped too."""
    op = primitive.REGISTRY["resample"]
    fn, args = _op_calls(np.random.default_rng(SEED))["resample"]
    values, times, queries = args
    lengths = np.full((2,), times.shape[1], np.int32)
    params = dict(method=0, out_of_range=0)
    out, valid = op.prim.bind(*(jnp.asarray(x) for x in (values, times, queries, lengths)),
                              **params)
    assert op._jitted.cache_info().currsize >= 1   # the bind went through the cached jit
    np.testing.assert_allclose(np.asarray(out), np.asarray(fn(*args)), rtol=1e-6, atol=1e-6)
    text = op._jitted(primitive._freeze(params)).lower(values, times, queries,
                                                       lengths).compile().as_text()
    assert _scoped_ops(text, "resample")


def _kernels_pretended(monkeypatch, op_name):
    """Makes the CUDA lowering of ``op_name`` take its FFI path (for cross-platform lowering)."""
    op = primitive.REGISTRY[op_name]
    monkeypatch.setattr(op, "kernel_available", lambda target=None: True)
    return op


def test_cuda_custom_call_is_scoped(monkeypatch):
    _kernels_pretended(monkeypatch, "resample")
    fn, args = _op_calls(np.random.default_rng(SEED))["resample"]
    text = jax.jit(fn).trace(*args).lower(lowering_platforms=("cuda",)).as_text(debug_info=True)
    call = [line for line in text.splitlines() if "stablehlo.custom_call @robocache_resample" in
            line]
    assert len(call) == 1, text
    loc_id = re.search(r"loc\((#loc\d+)\)\s*$", call[0]).group(1)
    loc = re.search(r"^%s = (.*)$" % loc_id, text, re.M).group(1)
    assert "jax_robocache/resample/robocache_resample" in loc, loc


# -- logging ---------------------------------------------------------------------------
@pytest.fixture
def debug_log(caplog, monkeypatch):
    """DEBUG records of a fresh log (nothing logged yet); programs run on the CPU (the
    jnp twin everywhere; the CUDA lowering is checked by cross-platform lowering)."""
    monkeypatch.setattr(primitive, "_LOGGED_LOWERINGS", set())
    caplog.set_level(logging.DEBUG, logger="jax_robocache")
    with jax.default_device(jax.devices("cpu")[0]):
        yield caplog


def _lowering_records(caplog, op):
    return [r.getMessage() for r in caplog.records
            if r.name == "jax_robocache" and r.getMessage().startswith(f"jax_robocache: {op}(")]


def test_log_once_per_compiled_shape(debug_log):
    rng = np.random.default_rng(SEED)
    values, times, queries = _streams_inputs(rng, T=11)
    f = jax.jit(lambda v, t, q: resample(v, t, q, method="nearest"))
    f(values, times, queries)
    f(values, times, queries)  # cached executable: nothing lowered
    jax.jit(lambda v, t, q: resample(v, t, q, method="nearest"))(values, times, queries)
    msgs = _lowering_records(debug_log, "resample")
    assert len(msgs) == 1, msgs
    assert "float32[2,40,3]" in msgs[0] and "float32[2,11]" in msgs[0], msgs[0]
    assert "on cpu -> jnp twin (no CUDA kernel on cpu)" in msgs[0], msgs[0]
    assert "workspace 0 bytes" in msgs[0], msgs[0]
    # A new shape is a new compilation: logged again.
    _, _, more = _streams_inputs(rng, T=13)
    f(values, times, more)
    msgs = _lowering_records(debug_log, "resample")
    assert len(msgs) == 2 and "float32[2,13]" in msgs[1], msgs


def test_log_every_op(debug_log):
    for op, (fn, args) in _op_calls(np.random.default_rng(SEED + 1)).items():
        jax.jit(fn)(*args)
        msgs = _lowering_records(debug_log, op)
        assert len(msgs) == 1, (op, msgs)
        assert "jnp twin" in msgs[0] and "workspace 0 bytes" in msgs[0], msgs[0]


def test_log_cuda_paths(debug_log, monkeypatch):
    """The CUDA lowering's three outcomes, by cross-platform lowering (no GPU needed)."""
    rng = np.random.default_rng(SEED + 2)
    points = _cloud(rng, B=3)
    feats = rng.normal(size=points.shape[:2] + (2,)).astype(np.float32)

    # New functions for every lowering: jax caches lowerings of the same function.
    def mean():
        return jax.jit(lambda p, f: voxelize(p, f, voxel_size=0.5, point_range=RANGE,
                                             mode="mean"))

    def count():
        return jax.jit(lambda p: voxelize(p, voxel_size=0.5, point_range=RANGE, mode="count"))

    # No kernel: the twin, and why.
    op = primitive.REGISTRY["voxelize"]
    monkeypatch.setattr(op, "kernel_available", lambda target=None: False)
    mean().trace(points, feats).lower(lowering_platforms=("cuda",))
    (msg,) = _lowering_records(debug_log, "voxelize")
    assert "on cuda -> jnp twin (" in msg and "workspace 0 bytes" in msg, msg

    # Kernels (pretended): the binned handler with its workspace, sized per cloud.
    _kernels_pretended(monkeypatch, "voxelize")
    mean_mode = VOXELIZE_MODES["mean"]
    monkeypatch.setattr(op, "workspace_bytes",
                        lambda p, f, n, *, mode, grid: 1000 + 7 * p.shape[1]
                        if mode == mean_mode else None)
    text = mean().trace(points, feats).lower(lowering_platforms=("cuda",)).as_text()
    per_cloud = 1000 + 7 * 300
    assert f"tensor<3x{per_cloud}xui8>" in text  # the workspace result the handler gets
    msg = _lowering_records(debug_log, "voxelize")[-1]
    assert "on cuda -> CUDA FFI target robocache_voxelize_binned" in msg, msg
    assert f"workspace {3 * per_cloud} bytes ({per_cloud} per episode x 3 episodes)" in msg, msg
    count().trace(points).lower(lowering_platforms=("cuda",))
    msg = _lowering_records(debug_log, "voxelize")[-1]
    assert "CUDA FFI target robocache_voxelize;" in msg and "workspace 0 bytes" in msg, msg

    # The force switch: the twin again, and the message names the switch.
    monkeypatch.setattr(op, "kernel_available", primitive.FfiOp.kernel_available.__get__(op))
    monkeypatch.setenv(primitive.FORCE_JNP_ENV, "1")
    count().trace(points[:2]).lower(lowering_platforms=("cuda",))
    msg = _lowering_records(debug_log, "voxelize")[-1]
    assert f"jnp twin ({primitive.FORCE_JNP_ENV} is set)" in msg, msg


def test_no_log_records_without_debug(caplog, monkeypatch):
    monkeypatch.setattr(primitive, "_LOGGED_LOWERINGS", set())
    caplog.set_level(logging.INFO, logger="jax_robocache")
    fn, args = _op_calls(np.random.default_rng(SEED + 3))["resample"]
    jax.jit(fn)(*args)
    assert not _lowering_records(caplog, "resample")
