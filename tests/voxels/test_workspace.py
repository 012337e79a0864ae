"""The scratch workspace of the sorting and binning handlers (points_to_voxels, voxelize sum/mean).

Their CUDA handlers take device scratch as an extra, dropped FFI result
``uint8[B, bytes per cloud]`` (``FfiOp(workspace_bytes=...)``), sized at
lowering time by host functions of the CUDA module. Checked here:
  * (module built, no GPU needed) per-cloud sizes cover any shard of the batch,
    and the CUDA lowering adds exactly that result (cross-platform lowering);
  * (GPU) both ops inside ``lax.scan`` under jit, with command buffers allowed
    down to one command, match the references; one custom call per op in the
    compiled HLO; a too-small workspace is refused by the handlers, not
    overrun; on 2+ GPUs, batch-sharded calls run per shard.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from references import points_to_voxels as reference_p2v
from references import voxelize as reference_voxel
from conftest import device, skip_unless_platform
from jax_robocache import points_to_voxels, voxelize
from jax_robocache._core import extension as _extension
from jax_robocache.voxels.points_to_voxels_cases import (RANGE as P2V_RANGE, SIZE as P2V_SIZE,
                                                          make_points)
from jax_robocache.voxels.voxelize_cases import RANGE as VOX_RANGE, VOXEL, clouds
from test_points_to_voxels import assert_matches as assert_p2v_matches
from test_voxelize import assert_matches as assert_vox_matches

M, PTS = 40, 6  # max_voxels, max_points_per_voxel of the p2v calls here


def module():
    if not _extension.STATUS.registered:
        pytest.skip(f"CUDA module not usable: {_extension.STATUS.reason}")
    return _extension._MODULE


def p2v(points, features, lengths):
    return points_to_voxels(points, features, voxel_size=P2V_SIZE, point_range=P2V_RANGE,
                            max_voxels=M, max_points_per_voxel=PTS, lengths=lengths)


def vox(points, features, lengths, mode):
    return voxelize(points, features, voxel_size=VOXEL, point_range=VOX_RANGE, mode=mode,
                    lengths=lengths)


# -- host-side sizes (CUDA module built; no GPU needed) --------------------------------------
@pytest.mark.parametrize("N", [0, 1, 100, 2047, 2049, 30000, 120000, 1_000_003])
@pytest.mark.parametrize("V", [1, 300, 65536, 40_000_000, 2**30])
def test_per_cloud_bytes_cover_every_shard(N, V):
    """B_shard * per_cloud(B) >= bytes(B_shard) for every shard B_shard <= B (up to 64)."""
    m = module()
    for B in (1, 3, 8, 64, 100):
        p2v_cloud = m.points_to_voxels_workspace_per_cloud(B, N, 4000, V)
        for row in (16, 6):  # feature bytes per point (C x item size)
            vox_cloud = m.voxelize_binned_workspace_per_cloud(B, N, V, row)
            for shard in range(1, min(B, 64) + 1):
                assert shard * vox_cloud >= m.voxelize_binned_workspace_bytes(shard, N, V, row), (
                    B, shard, row)
        for shard in range(1, min(B, 64) + 1):
            assert shard * p2v_cloud >= m.points_to_voxels_workspace_bytes(shard, N, 4000, V), (
                B, shard)
    # not wildly oversized: per point its cell, bucket cell, feature row, heavy point and heavy
    # run (12 bytes per 3 points); 512 partition counts and a start per bin of 8192 voxels (at
    # most 8192 bins); fixed costs
    for row, per_point in ((16, 32), (6, 22)):
        big = m.voxelize_binned_workspace_per_cloud(16, N, V, row)
        bins = min(-(-V // 8192), 8192)
        assert big <= N * per_point + (512 + 1) * 4 * bins + 16 * 1024, (row, big)


def test_cuda_lowering_adds_the_workspace_result():
    """Lowered for CUDA (on any machine): one extra uint8[B, per_cloud] result per sort/bin call."""
    m = module()
    rng = np.random.default_rng(0)
    B, N, C = 3, 500, 2
    points = make_points(rng, (B,), N)
    feats = rng.normal(size=(B, N, C)).astype(np.float32)
    lengths = np.full(B, N, np.int32)

    def f(p, x, n):
        return (p2v(p, x, n), vox(p, x, n, "mean"), vox(p, x, n, "sum"), vox(p, x, n, "count"),
                vox(p, x, n, "max"))

    text = jax.jit(f).trace(points, feats, lengths).lower(lowering_platforms=("cuda",)).as_text()
    calls = {}
    for line in text.splitlines():
        found = re.search(r"custom_call @(robocache_\w+)\(.* -> (.*)$", line.strip())
        if found:  # target -> its result types
            calls.setdefault(found.group(1), []).append(found.group(2))
    grid = reference_voxel.grid_shape(VOXEL, VOX_RANGE)
    p2v_grid = reference_p2v.grid(P2V_SIZE, P2V_RANGE)[3]
    p2v_ws = m.points_to_voxels_workspace_per_cloud(B, N, M, int(np.prod(p2v_grid)))
    V = int(np.prod(grid))
    sums_ws = m.voxelize_binned_workspace_per_cloud(B, N, V, C * 4)  # float32 rows
    p2v_results = calls["robocache_points_to_voxels"]
    assert len(p2v_results) == 1 and p2v_results[0].endswith(f"tensor<{B}x{p2v_ws}xui8>)")
    assert p2v_results[0].count("tensor<") == 6  # 5 outputs + the workspace
    dims = "x".join(map(str, grid))
    binned_results = calls["robocache_voxelize_binned"]  # mean, sum
    assert binned_results == [f"(tensor<{B}x{dims}x{C}xf32>, tensor<{B}x{sums_ws}xui8>)"] * 2, (
        binned_results)
    plain_results = calls["robocache_voxelize"]  # count, max: no workspace
    assert len(plain_results) == 2 and not any("ui8" in r for r in plain_results), plain_results


# -- on the GPU ------------------------------------------------------------------------------
def scan_of_both_ops(points, feats, lengths):
    """lax.scan over shifted clouds: p2v, voxelize sum and mean in the body."""
    def body(carry, shift):
        p = points + shift
        out = p2v(p, feats, lengths)
        s, m = vox(p, feats, lengths, "sum"), vox(p, feats, lengths, "mean")
        return carry + out.num_voxels.sum(), (out, s, m)
    return lambda shifts: jax.lax.scan(body, jnp.int32(0), shifts)


@pytest.mark.parametrize("min_graph_size", [None, 1])
def test_ops_inside_scan_match_reference(rng, min_graph_size):
    """Both ops inside lax.scan under jit (a while loop; command buffers when XLA uses them)."""
    skip_unless_platform(None, "gpu")
    B, N, C = 3, 700, 4
    points, feats, lengths = clouds(rng, B, N, C)
    shifts = rng.uniform(-0.3, 0.3, (4, 1, 1, 3)).astype(np.float32)
    run = scan_of_both_ops(points, feats, lengths)
    with jax.default_device(device("gpu")):
        lowered = jax.jit(run).lower(shifts)
        options = {} if min_graph_size is None else {"xla_gpu_graph_min_graph_size": 1}
        try:
            compiled = lowered.compile(compiler_options=options)
        except Exception as err:  # an XLA without this option
            pytest.skip(f"compiler option {options} refused: {err}")
        hlo = compiled.as_text()
        for target in ("robocache_points_to_voxels", "robocache_voxelize_binned"):
            assert f'custom_call_target="{target}"' in hlo, (target, hlo)
        _, (outs, sums, means) = compiled(shifts)
        again = compiled(shifts)[1]
    for k, shift in enumerate(shifts):
        p = points + shift
        ref = reference_p2v.points_to_voxels(p, feats, lengths, P2V_SIZE, P2V_RANGE, M, PTS)
        assert_p2v_matches(jax.tree.map(lambda a: a[k], outs), ref, f"step {k}")
        for mode, got in (("sum", sums), ("mean", means)):
            expected = reference_voxel.voxelize(p, np.asarray(feats), lengths, VOXEL, VOX_RANGE,
                                                mode)
            assert_vox_matches(got[k], expected, mode, err=f"{mode} step {k}")
    for a, b in zip(jax.tree.leaves((outs, sums, means)), jax.tree.leaves(again)):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()  # deterministic replays


def test_one_custom_call_per_op(rng):
    """One FFI custom call per op in the compiled HLO (the workspace adds no other op)."""
    skip_unless_platform(None, "gpu")
    points, feats, lengths = clouds(rng, 2, 300, 3)
    f = lambda p, x, n: (p2v(p, x, n), vox(p, x, n, "mean"))  # noqa: E731
    with jax.default_device(device("gpu")):
        hlo = jax.jit(f).lower(points, feats, lengths).compile().as_text()
    assert hlo.count('custom_call_target="robocache_points_to_voxels"') == 1, hlo
    assert hlo.count('custom_call_target="robocache_voxelize_binned"') == 1, hlo
    assert hlo.count("custom_call_target=") == 2, hlo


def test_too_small_workspace_is_refused(rng):
    """Called directly with a 1-byte-per-cloud workspace, the handlers fail cleanly."""
    skip_unless_platform(None, "gpu")
    B, N, C = 2, 5000, 3
    points, feats, lengths = clouds(rng, B, N, C)
    grid = reference_voxel.grid_shape(VOXEL, VOX_RANGE)
    f32 = lambda v: np.asarray(v, np.float32)  # noqa: E731
    lo, hi = f32(VOX_RANGE[:3]), f32(VOX_RANGE[3:])
    tiny = jax.ShapeDtypeStruct((B, 1), jnp.uint8)
    binned_sum = jax.ffi.ffi_call(
        "robocache_voxelize_binned",
        (jax.ShapeDtypeStruct((B,) + tuple(grid) + (C,), jnp.float32), tiny))
    p2v_grid = reference_p2v.grid(P2V_SIZE, P2V_RANGE)
    p2v_call = jax.ffi.ffi_call(
        "robocache_points_to_voxels",
        (jax.ShapeDtypeStruct((B, M, PTS, 3 + C), jnp.float32),
         jax.ShapeDtypeStruct((B, M, 3), jnp.int32), jax.ShapeDtypeStruct((B, M), jnp.int32),
         jax.ShapeDtypeStruct((B,), jnp.int32), jax.ShapeDtypeStruct((B, N), jnp.int32), tiny))
    with jax.default_device(device("gpu")):
        with pytest.raises(Exception, match="workspace"):
            jax.block_until_ready(jax.jit(lambda p, x, n: binned_sum(
                p, x, n, mode=np.int32(2), lo=lo, hi=hi, size=f32(VOXEL)))(points, feats, lengths))
        with pytest.raises(Exception, match="workspace"):
            jax.block_until_ready(jax.jit(lambda p, x, n: p2v_call(
                p, x, n, lo=p2v_grid[0], hi=p2v_grid[1], size=p2v_grid[2],
                dims=np.asarray(p2v_grid[3], np.int32)))(points, feats, lengths))


def test_batch_sharded_on_several_gpus(rng):
    """Batch-sharded inputs: per-shard calls (no collectives), results equal one device's."""
    skip_unless_platform(None, "gpu")
    devs = jax.devices("gpu")
    if len(devs) < 2:
        pytest.skip(f"needs 2+ GPUs, found {len(devs)}")
    devs = devs[:4] if len(devs) >= 4 else devs[:2]
    mesh = jax.sharding.Mesh(np.array(devs), ("clouds",))
    batch = NamedSharding(mesh, P("clouds"))
    points, feats, lengths = clouds(rng, 3 * len(devs), 900, 5)
    f = jax.jit(lambda p, x, n: (p2v(p, x, n), vox(p, x, n, "mean")))
    single = f(*[jax.device_put(a, devs[0]) for a in (points, feats, lengths)])
    sharded = [jax.device_put(a, batch) for a in (points, feats, lengths)]
    out = f(*sharded)
    hlo = f.lower(*sharded).compile().as_text()
    assert not [c for c in ("all-gather", "all-to-all", "collective-permute", "all-reduce")
                if c in hlo], hlo
    assert "robocache_points_to_voxels" in hlo and "robocache_voxelize_binned" in hlo
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(single)):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
