"""voxelize against the independent numpy reference, on CPU and (when present) GPU."""

from __future__ import annotations

import functools
import math
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from jax.test_util import check_grads

from references import voxelize as ref
from exact import assert_identical
from conftest import PLATFORMS, device, rng_for, skip_unless_platform
from jax_robocache import voxelize
from jax_robocache.voxels.voxelize_cases import RANGE, VOXEL, clouds

MODES = ("count", "occupancy", "sum", "mean", "max")
FEATURE_MODES = ("sum", "mean", "max")
DTYPES = {"float32": np.float32, "bfloat16": jnp.bfloat16}
DATA = os.path.join(os.path.dirname(__file__), os.pardir, "data", "vlp16.npz")


def reference(points, features, lengths, mode, voxel=VOXEL, prange=RANGE):
    f = None if features is None else np.asarray(jnp.asarray(features, jnp.float32))
    return ref.voxelize(np.asarray(points), f, lengths, voxel, prange, mode)


def assert_matches(out, expected, mode, dtype_name="float32", err=""):
    out = np.asarray(jnp.asarray(out, jnp.float32), np.float64)
    if mode in ("count", "occupancy", "max"):  # exact, signed zeros too
        assert_identical(out, expected, err_msg=err)
        return
    tol = {"float32": 2e-6, "bfloat16": 8e-3}[dtype_name]
    scale = max(float(np.nanmax(np.abs(expected), initial=1.0)), 1.0)
    np.testing.assert_allclose(out, expected, rtol=tol * 4, atol=tol * 4 * scale, err_msg=err)


def expected_dtype(mode, dtype):
    return {"count": jnp.int32, "occupancy": jnp.float32}.get(mode, jnp.dtype(dtype))


class VoxelizeReferenceTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.product(platform=PLATFORMS, mode=MODES, dtype=tuple(DTYPES))
    def test_matches_reference(self, platform, mode, dtype):
        skip_unless_platform(self, platform)
        if mode not in FEATURE_MODES and dtype != "float32":
            self.skipTest("count/occupancy ignore features")
        rng = rng_for(self.id())
        B, N, C = int(rng.integers(1, 5)), int(rng.integers(1, 300)), int(rng.integers(1, 11))
        pts, feats, lengths = clouds(rng, B, N, C, dtype=DTYPES[dtype])
        fn = self.variant(functools.partial(voxelize, voxel_size=VOXEL, point_range=RANGE,
                                            mode=mode))
        with jax.default_device(device(platform)):
            out = fn(pts, feats, lengths=lengths)
        expected = reference(pts, feats, lengths, mode)
        chex.assert_shape(out, expected.shape)
        self.assertEqual(out.dtype, expected_dtype(mode, DTYPES[dtype]))
        assert_matches(out, expected, mode, dtype, f"{mode}/{dtype} B={B} N={N} C={C}")


def test_boundaries_exactly(platform):
    """Points on voxel faces and on the range's min (kept) and max (dropped); non-finite dropped;
    a point below max whose float32 index rounds to the grid's end is dropped."""
    voxel, prange = 0.5, (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)  # exact in binary: 4 x 4 x 4
    below_max = np.nextafter(np.float32(1.0), np.float32(0.0))
    pts = np.array([
        [-1.0, -1.0, -1.0],        # min corner -> (0, 0, 0)
        [-0.5, 0.0, 0.5],          # faces -> (1, 2, 3)
        [1.0, 0.0, 0.0],           # x == max: dropped
        # inside [min, max), but float32 p - min rounds up to 2.0: index 4, outside: dropped
        [below_max, 0.0, 0.0],
        [0.75, 0.75, 0.75],        # -> (3, 3, 3)
        [np.nan, 0.0, 0.0], [0.0, np.inf, 0.0], [0.0, 0.0, -np.inf],  # dropped
        [-1.0000001, 0.0, 0.0],    # just below min: dropped
        [0.0, 0.0, 0.0],           # -> (2, 2, 2)
        [-0.5, 0.0, 0.5],          # same voxel as point 1
    ], np.float32)
    count = np.asarray(voxelize(pts, voxel_size=voxel, point_range=prange))
    expected = np.zeros((4, 4, 4), np.int32)
    for cell, n in (((0, 0, 0), 1), ((1, 2, 3), 2), ((3, 3, 3), 1), ((2, 2, 2), 1)):
        expected[cell] = n
    np.testing.assert_array_equal(count, expected)
    np.testing.assert_array_equal(count, ref.voxelize(pts[None], None, None, voxel, prange,
                                                      "count")[0])


#: A range that is not a whole number of voxels: x 2 / 0.3 -> 7 cells (2.1, past max: only the
#: range check drops [2.0, 2.1)); y 2 / 0.45 -> 4 cells (1.8, short of max: the cell check drops
#: [1.8, 2.0)); z 1 / 0.4 -> round(2.5) = 2 cells (0.8: the cell check drops [0.8, 1.0)).
PARTIAL_VOXEL = (0.3, 0.45, 0.4)
PARTIAL_RANGE = (0.0, 0.0, 0.0, 2.0, 2.0, 1.0)
PARTIAL_POINTS = np.array([
    [2.0, 0.5, 0.5],    # x == max, inside the last cell's [1.8, 2.1): dropped
    [1.99, 0.5, 0.5],   # -> (6, 1, 1)
    [0.5, 1.9, 0.5],    # y in [1.8, 2.0): index 4 == Y: dropped
    [0.5, 1.79, 0.5],   # -> (1, 3, 1)
    [0.5, 0.5, 0.9],    # z in [0.8, 1.0): index 2 == Z: dropped
    [0.5, 0.5, 0.79],   # -> (1, 1, 1)
    [0.0, 0.0, 0.0],    # min corner -> (0, 0, 0)
    [2.0, 2.0, 1.0],    # the max corner: dropped
], np.float32)
#: The kept points of PARTIAL_POINTS: (index, cell).
PARTIAL_KEPT = ((1, (6, 1, 1)), (3, (1, 3, 1)), (5, (1, 1, 1)), (6, (0, 0, 0)))


def test_range_not_a_whole_number_of_voxels(platform, rng):
    """The range check on its own: max lies inside the last cell (x), or past it (y, z)."""
    count = np.asarray(voxelize(PARTIAL_POINTS, voxel_size=PARTIAL_VOXEL,
                                point_range=PARTIAL_RANGE))
    expected = np.zeros((7, 4, 2), np.int32)
    for _, cell in PARTIAL_KEPT:
        expected[cell] = 1
    np.testing.assert_array_equal(count, expected)
    # random clouds around the same grid, every mode, against the reference
    pts, feats, lengths = clouds(rng, 2, 150, 2, voxel=PARTIAL_VOXEL, prange=PARTIAL_RANGE)
    for mode in MODES:
        out = voxelize(pts, feats, voxel_size=PARTIAL_VOXEL, point_range=PARTIAL_RANGE,
                       mode=mode, lengths=lengths)
        assert_matches(out, reference(pts, feats, lengths, mode, PARTIAL_VOXEL, PARTIAL_RANGE),
                       mode, err=mode)


def test_oversized_grid_warns_at_trace_time():
    """A grid with > 1024 voxels per point and >= 256 MiB of output warns; dense grids do not."""
    import warnings
    from jax_robocache.voxels import OversizedOutputWarning
    cloud = jax.ShapeDtypeStruct((2, 1000, 3), jnp.float32)
    feats = jax.ShapeDtypeStruct((2, 1000, 4), jnp.float32)
    cm = functools.partial(voxelize, voxel_size=0.01, point_range=(0, 0, 0, 10, 10, 2))
    with pytest.warns(OversizedOutputWarning, match=r"voxelize: a grid of \(1000, 1000, 200\)"):
        jax.eval_shape(cm, cloud)  # a voxel size in the wrong unit: 1.5 GiB, never allocated
    with pytest.warns(OversizedOutputWarning, match="GiB"):
        jax.eval_shape(functools.partial(cm, mode="mean"), cloud, feats)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OversizedOutputWarning)
        # a typical dense BEV grid: 400 x 400 x 40 for 120k points, a batch of 8
        jax.eval_shape(functools.partial(voxelize, voxel_size=0.2, point_range=(0, -40, -3, 80,
                                                                                40, 5)),
                       jax.ShapeDtypeStruct((8, 120_000, 3), jnp.float32))
        jax.eval_shape(functools.partial(cm, point_range=(0, 0, 0, 1, 1, 1)), cloud)  # small


@pytest.mark.parametrize("mode", MODES)
def test_padded_batches_and_leading_dims(platform, rng, mode):
    pts, feats, lengths = clouds(rng, 6, 120, 3)
    pts, feats, lengths = pts.reshape(2, 3, 120, 3), feats.reshape(2, 3, 120, 3), \
        lengths.reshape(2, 3)
    out = voxelize(pts, feats, voxel_size=VOXEL, point_range=RANGE, mode=mode, lengths=lengths)
    expected = reference(pts.reshape(6, 120, 3), feats.reshape(6, 120, 3), lengths.reshape(6),
                         mode)
    assert_matches(np.asarray(out).reshape(expected.shape), expected, mode)
    # lengths broadcast: one per row of the leading shape, and a scalar
    out_b = voxelize(pts, feats, voxel_size=VOXEL, point_range=RANGE, mode=mode,
                     lengths=np.array([50, 7], np.int64)[:, None])
    exp_b = reference(pts.reshape(6, 120, 3), feats.reshape(6, 120, 3),
                      np.repeat([50, 7], 3), mode)
    assert_matches(np.asarray(out_b).reshape(exp_b.shape), exp_b, mode)
    # lengths outside [0, N] are clamped
    out_c = voxelize(pts[0], feats[0], voxel_size=VOXEL, point_range=RANGE, mode=mode,
                     lengths=np.array([-4, 500, 120]))
    exp_c = reference(pts[0], feats[0], np.array([0, 120, 120]), mode)
    assert_matches(out_c, exp_c, mode)


@pytest.mark.parametrize("mode", MODES)
def test_vmap_matches_loop(platform, rng, mode):
    pts, feats, lengths = clouds(rng, 5, 90, 2)
    f = functools.partial(voxelize, voxel_size=VOXEL, point_range=RANGE, mode=mode)
    batched = jax.jit(jax.vmap(lambda p, x, n: f(p, x, lengths=n)))(pts, feats, lengths)
    looped = np.stack([np.asarray(f(pts[b], feats[b], lengths=lengths[b])) for b in range(5)])
    if mode in ("sum", "mean"):
        np.testing.assert_allclose(np.asarray(batched), looped, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(np.asarray(batched), looped)
    # one shared feature set for every cloud (unmapped operand), and nested vmap
    shared = jax.vmap(lambda p: f(p, feats[0]))(pts)
    exp = reference(pts, np.broadcast_to(np.asarray(feats[:1], np.float32), feats.shape), None,
                    mode)
    assert_matches(shared, exp, mode)
    # vmap over lengths only: one cloud (shared points and features), several prefixes
    prefixes = jax.vmap(lambda n: f(pts[0], feats[0], lengths=n))(lengths)
    exp_p = reference(np.broadcast_to(pts[:1], pts.shape),
                      np.broadcast_to(np.asarray(feats[:1], np.float32), feats.shape), lengths,
                      mode)
    assert_matches(prefixes, exp_p, mode)
    nested = jax.vmap(jax.vmap(f))(pts.reshape(5, 1, 90, 3), feats.reshape(5, 1, 90, 2))
    assert_matches(np.asarray(nested).reshape(exp.shape), reference(pts, feats, None, mode),
                   mode)


@pytest.mark.parametrize("mode", ("sum", "mean"))
def test_grad_sum_mean(platform, rng, mode):
    pts, feats, lengths = clouds(rng, 2, 40, 3)
    f = lambda x: voxelize(pts, x, voxel_size=VOXEL, point_range=RANGE, mode=mode,  # noqa: E731
                           lengths=lengths)
    # sum and mean are linear in the features: a large finite-difference step costs no accuracy,
    # while the default 1e-4 leaves float32 rounding noise (~0.008 on the VJP projection over
    # 1920 outputs) that broke the 0.01 tolerance for about 1% of seeds (e.g. 13).
    check_grads(f, (np.asarray(feats),), order=1, modes=("fwd", "rev"), atol=1e-2, rtol=1e-2,
                eps=1e-2)


def test_grad_max_to_the_winner(platform, rng):
    pts, feats, lengths = clouds(rng, 2, 150, 3)
    weights = rng.normal(size=(2,) + ref.grid_shape(VOXEL, RANGE) + (3,)).astype(np.float32)
    loss = lambda x: jnp.sum(voxelize(pts, x, voxel_size=VOXEL, point_range=RANGE,  # noqa: E731
                                      mode="max", lengths=lengths) * weights)
    grad = np.asarray(jax.jit(jax.grad(loss))(feats))
    expected = np.zeros(feats.shape, np.float32)
    for b in range(2):
        win = ref.max_winners(pts[b], np.asarray(feats[b]), lengths[b], VOXEL, RANGE)
        for cell in zip(*np.nonzero(win >= 0)):
            expected[b, win[cell], cell[-1]] += weights[(b,) + cell]
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-6)


def test_max_ties_nan_and_signed_zero(platform):
    """Ties go to the lowest index (value and gradient); NaN wins; a zero maximum is +0.0."""
    pts = np.full((6, 3), 0.1, np.float32)  # all in one voxel
    feats = np.array([[1.0, -0.0, 2.0], [3.0, 0.0, np.nan], [3.0, -0.0, 5.0],
                      [-7.0, -1.0, 5.0], [3.0, -0.0, 1.0], [0.5, -3.0, -np.inf]], np.float32)
    f = lambda x: voxelize(pts, x, voxel_size=1.0, point_range=(0, 0, 0, 1, 1, 1),  # noqa: E731
                           mode="max")[0, 0, 0]
    out = np.asarray(f(feats))
    assert out[0] == 3.0 and np.isnan(out[2])
    assert out[1] == 0.0 and not np.signbit(out[1])  # -0.0 and 0.0 tie: +0.0
    grad = np.asarray(jax.jit(jax.grad(lambda x: jnp.sum(f(x) * jnp.array([1.0, 10.0, 100.0]))))(
        feats))
    expected = np.zeros_like(feats)
    expected[1, 0], expected[0, 1], expected[1, 2] = 1.0, 10.0, 100.0
    np.testing.assert_array_equal(grad, expected)
    # bf16 and a negative-only voxel
    out16 = np.asarray(jnp.asarray(f(jnp.asarray(-np.abs(feats) - 1, jnp.bfloat16)),
                                   jnp.float32))
    np.testing.assert_array_equal(out16[:2], [-1.5, -1.0])


def test_grads_are_finite_with_empty_voxels_and_nan_dropped_points(platform, rng):
    pts, feats, lengths = clouds(rng, 2, 60, 2)
    feats = np.asarray(feats).copy()
    feats[1, lengths[1]:] = np.nan  # padding garbage: never used
    for mode in FEATURE_MODES:
        g = jax.jit(jax.grad(lambda x: jnp.sum(voxelize(
            pts, x, voxel_size=VOXEL, point_range=RANGE, mode=mode, lengths=lengths))))(feats)
        assert np.isfinite(np.asarray(g)[1, :lengths[1]]).all(), mode
        np.testing.assert_array_equal(np.asarray(g)[1, lengths[1]:], 0.0)


def test_edge_sizes(platform, rng):
    pts, feats, _ = clouds(rng, 2, 10, 3)
    kw = dict(voxel_size=VOXEL, point_range=RANGE)
    X, Y, Z = ref.grid_shape(VOXEL, RANGE)
    for mode in MODES:
        tail = (X, Y, Z, 3) if mode in FEATURE_MODES else (X, Y, Z)
        chex.assert_shape(voxelize(pts[:0], feats[:0], mode=mode, **kw), (0,) + tail)  # B = 0
        empty = voxelize(pts[:, :0], feats[:, :0], mode=mode, **kw)  # N = 0
        chex.assert_shape(empty, (2,) + tail)
        np.testing.assert_array_equal(np.asarray(empty, np.float32), 0.0)
        none = voxelize(pts, feats, mode=mode, lengths=np.zeros(2, np.int32), **kw)
        np.testing.assert_array_equal(np.asarray(none, np.float32), 0.0)
    one = voxelize(np.zeros((1, 3), np.float32), voxel_size=2.0, point_range=(0, 0, 0, 1, 1, 1))
    np.testing.assert_array_equal(one, [[[1]]])  # round(0.5) = 0 -> at least one voxel per axis
    wide = voxelize(pts, feats[..., :0], voxel_size=VOXEL, point_range=RANGE, mode="sum")
    chex.assert_shape(wide, (2, X, Y, Z, 0))  # C = 0


def test_trace_time_errors():
    p = np.zeros((2, 5, 3), np.float32)
    f = np.zeros((2, 5, 4), np.float32)
    kw = dict(voxel_size=0.5, point_range=(0, 0, 0, 1, 1, 1))
    with pytest.raises(ValueError, match="mode"):
        voxelize(p, f, mode="median", **kw)
    for mode in FEATURE_MODES:
        with pytest.raises(ValueError, match="features"):
            voxelize(p, mode=mode, **kw)
    with pytest.raises(ValueError, match="points"):
        voxelize(p[..., :2], **kw)
    with pytest.raises(ValueError, match="points"):
        voxelize(np.zeros(3, np.float32), **kw)
    with pytest.raises(TypeError, match="points"):
        voxelize(p.astype(np.float16), **kw)
    with pytest.raises(TypeError, match="features"):
        voxelize(p, f.astype(np.float16), mode="sum", **kw)
    with pytest.raises(ValueError, match="features"):
        voxelize(p, f[:, :4], mode="mean", **kw)
    with pytest.raises(ValueError, match="leading"):
        voxelize(p, np.zeros((3, 5, 4), np.float32), mode="max", **kw)
    with pytest.raises(TypeError, match="lengths"):
        voxelize(p, lengths=np.ones(2, np.float32), **kw)
    with pytest.raises(ValueError, match="voxel_size"):
        voxelize(p, voxel_size=0.0, point_range=(0, 0, 0, 1, 1, 1))
    with pytest.raises(ValueError, match="voxel_size"):
        voxelize(p, voxel_size=(0.1, -0.1, 0.1), point_range=(0, 0, 0, 1, 1, 1))
    with pytest.raises(ValueError, match="point_range"):
        voxelize(p, voxel_size=0.1, point_range=(0, 0, 0, 1, 0, 1))  # empty y range
    with pytest.raises(ValueError, match="point_range"):
        voxelize(p, voxel_size=0.1, point_range=(0, 0, 0, 1, 1))
    with pytest.raises(ValueError, match="int32"):
        voxelize(p, voxel_size=1e-3, point_range=(0, 0, 0, 2, 2, 1))
    with pytest.raises(ValueError, match="features"):  # errors at trace time under jit too
        jax.jit(lambda p: voxelize(p, mode="sum", **kw))(p)


def test_real_velodyne_scan(platform):
    """One real VLP-16 revolution (tests/data/README.md): counts, mean and max intensity."""
    scan = np.load(DATA)["xyzil"]
    pts, feats = scan[:, :3], scan[:, 3:5]  # intensity, ring
    voxel, prange = (0.4, 0.4, 0.25), (-20.0, -20.0, -2.0, 20.0, 20.0, 2.0)
    for mode in ("count", "mean", "max"):
        out = voxelize(pts, feats, voxel_size=voxel, point_range=prange, mode=mode)
        expected = ref.voxelize(pts[None], feats[None], None, voxel, prange, mode)[0]
        assert_matches(out, expected, mode, err=mode)
        if mode == "count":
            inside = np.all((pts >= prange[:3]) & (pts < prange[3:]), axis=1)
            assert int(np.asarray(out).sum()) == int(inside.sum()) > 5000


def test_inside_scan_and_grad_under_jit(platform, rng):
    pts, feats, lengths = clouds(rng, 3, 80, 2)
    shifts = rng.uniform(-0.3, 0.3, (4, 3)).astype(np.float32)

    def body(carry, s):
        out = voxelize(pts + s, feats, voxel_size=VOXEL, point_range=RANGE, mode="mean",
                       lengths=lengths)
        return carry + jnp.sum(out), out

    _, outs = jax.jit(lambda s: jax.lax.scan(body, 0.0, s))(shifts)
    for k, s in enumerate(shifts):
        assert_matches(outs[k], reference(pts + s, feats, lengths, "mean"), "mean")


def test_gpu_repeatable_and_equal_to_cpu(rng):
    """GPU: every mode bitwise identical run to run; count/occupancy/max equal CPU bit for bit."""
    skip_unless_platform(None, "gpu")
    B, N, C = 2, 200_000, 4
    pts, feats, lengths = clouds(rng, B, N, C, voxel=0.25, prange=(-1, -1, -1, 1, 1, 1))
    kw = dict(voxel_size=0.25, point_range=(-1, -1, -1, 1, 1, 1), lengths=lengths)  # ~150/voxel
    for dtype in DTYPES.values():
        x = jnp.asarray(feats, dtype)
        for mode in MODES:
            fn = jax.jit(functools.partial(voxelize, mode=mode, **kw))
            with jax.default_device(device("gpu")):
                runs = [np.asarray(fn(pts, x)) for _ in range(4)]
            for r in runs[1:]:
                assert r.tobytes() == runs[0].tobytes(), f"{mode} {dtype} not repeatable"
            with jax.default_device(device("cpu")):
                cpu = np.asarray(fn(pts, x))
            if mode in ("count", "occupancy", "max"):
                assert runs[0].tobytes() == cpu.tobytes(), f"{mode} {dtype} GPU != CPU"
            else:  # ~150 points per voxel, |feature| ~ 3: float32 sums of magnitude ~40
                rtol, atol = (1e-4, 1e-3) if dtype == np.float32 else (1e-2, 1e-2)
                np.testing.assert_allclose(np.asarray(runs[0], np.float32),
                                           np.asarray(cpu, np.float32), rtol=rtol, atol=atol)


def test_gpu_large_grid_in_slices(rng):
    """count/occupancy on grids larger than half the L2 cache go in slices (several zero +
    scatter passes): equal to the CPU bit for bit, for one cloud and a batch straddling slices."""
    skip_unless_platform(None, "gpu")
    prange = (0.0, 0.0, 0.0, 25.6, 25.6, 25.6)
    kw = dict(voxel_size=0.1, point_range=prange)  # 256^3 cells: 64 MiB of int32
    for B, N in ((1, 1_200_000), (3, 400_000)):
        pts = rng.uniform(-0.5, 26.0, (B, N, 3)).astype(np.float32)
        lengths = np.full((B,), N, np.int32)
        lengths[-1] = N // 2
        for mode in ("count", "occupancy"):
            fn = jax.jit(functools.partial(voxelize, mode=mode, lengths=lengths, **kw))
            with jax.default_device(device("gpu")):
                gpu = np.asarray(fn(pts))
            with jax.default_device(device("cpu")):
                cpu = np.asarray(fn(pts))
            assert gpu.tobytes() == cpu.tobytes(), (B, mode)
        assert int(gpu.sum()) > 0


def _vectorized_reference(points, features, lengths, voxel, prange):
    """count [B, V] and float64 sums [B, V, C] by np.bincount (the voxel rule in float32)."""
    shape = ref.grid_shape(voxel, prange)
    B, N, _ = points.shape
    V = int(np.prod(shape))
    lo, hi = np.float32(prange[:3]), np.float32(prange[3:])
    with np.errstate(invalid="ignore"):
        f = np.floor((points - lo) / np.float32(voxel))
        keep = ((points >= lo) & (points < hi) & (f >= 0) & (f < np.asarray(shape))).all(-1)
    keep &= np.arange(N)[None, :] < lengths[:, None]
    ijk = np.where(keep[..., None], f, 0).astype(np.int64)
    voxel = (ijk[..., 0] * shape[1] + ijk[..., 1]) * shape[2] + ijk[..., 2]
    cell = voxel + np.arange(B)[:, None] * V
    cell, kept = cell[keep], features[keep].astype(np.float64)
    count = np.bincount(cell, minlength=B * V).reshape(B, V)
    sums = np.stack([np.bincount(cell, kept[:, c], minlength=B * V) for c in range(kept.shape[1])],
                    -1).reshape(B, V, -1)
    return shape, count, sums


@pytest.mark.parametrize("B,N,voxel,prange", [
    (1, 1_200_000, 0.1, (0, 0, 0, 25.6, 25.6, 25.6)),   # 256^3: 2048 bins, 512 partitions
    (3, 400_000, 0.1, (0, 0, 0, 25.6, 25.6, 25.6)),     # 6144 bins
    (5, 300_000, 0.1, (0, 0, 0, 25.6, 25.6, 25.6)),     # 84M cells: bins of 2 tiles
    (40, 1000, (0.1, 0.2, 0.3), (0, 0, 0, 0.7, 2.2, 3.9)),  # 7x11x13: bins span clouds
], ids=("one_cloud", "three_clouds", "wide_bins", "bins_across_clouds"))
def test_gpu_binned_layouts(rng, B, N, voxel, prange):
    """count/occupancy/sum/mean through the GPU's binned pipeline on large grids, many clouds
    and wide bins, with clustered points (voxels of 3 to thousands of points), NaNs and padded
    clouds: count and occupancy exact (L2 atomics, in slices on these grids), sum and mean
    within float32 rounding of float64."""
    skip_unless_platform(None, "gpu")
    lo, hi = np.asarray(prange[:3]), np.asarray(prange[3:])
    pts = rng.uniform(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo), (B, N, 3))
    cluster = rng.random((B, N)) < 0.2  # a small ball: heavy voxels, some past the warp size
    pts[cluster] = lo + (hi - lo) * 0.3 + rng.normal(0, 0.01 * (hi - lo).min(), (cluster.sum(), 3))
    pts[rng.random((B, N)) < 0.01] = np.nan
    pts = pts.astype(np.float32)
    feats = rng.normal(size=(B, N, 2)).astype(np.float32)
    lengths = rng.integers(N // 2, N + 1, B).astype(np.int32)
    lengths[0] = N
    shape, count, sums = _vectorized_reference(pts, feats, lengths, voxel, prange)
    assert count.max() > 64 and (count > 0).mean() > 0.001
    kw = dict(voxel_size=voxel, point_range=prange, lengths=lengths)
    with jax.default_device(device("gpu")):
        got = {mode: np.asarray(jax.jit(functools.partial(voxelize, mode=mode, **kw))(pts, feats))
               .reshape(B, -1, *(2,) * (mode in ("sum", "mean")))
               for mode in ("count", "occupancy", "sum", "mean")}
    np.testing.assert_array_equal(got["count"], count)
    np.testing.assert_array_equal(got["occupancy"], (count > 0).astype(np.float32))
    scale = np.abs(sums).max()
    np.testing.assert_allclose(got["sum"], sums, rtol=1e-6, atol=1e-6 * scale)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count[..., None] > 0, sums / count[..., None], 0.0)
    np.testing.assert_allclose(got["mean"], mean, rtol=1e-6, atol=1e-6)


def test_gpu_several_grids_in_one_graph(rng):
    """sum/mean calls whose kernels need different shared memory (grid size, feature width,
    points per cloud) in one jitted loop (one CUDA graph, re-run with new inputs): each call
    keeps its launch configuration, in any order."""
    skip_unless_platform(None, "gpu")
    big = dict(voxel_size=0.1, point_range=(0, 0, 0, 25.6, 25.6, 25.6))  # 256^3: 2048 bins
    small = dict(voxel_size=(0.1, 0.2, 0.3), point_range=(0, 0, 0, 0.7, 2.2, 3.9))
    calls = [(big, 4_000_000, 4, "mean"), (small, 3000, 64, "sum"), (big, 100_000, 2, "sum")]

    def draw():
        out = []
        for kw, N, C, _ in calls:
            lo, hi = np.asarray(kw["point_range"][:3]), np.asarray(kw["point_range"][3:])
            out.append((rng.uniform(lo - 0.1, hi + 0.1, (1, N, 3)).astype(np.float32),
                        rng.normal(size=(1, N, C)).astype(np.float32)))
        return out

    inputs = [draw() for _ in range(3)]
    stacked = jax.tree_util.tree_map(lambda *x: np.stack(x), *inputs)

    def body(carry, xs):
        outs = tuple(voxelize(p, f, mode=mode, **kw) for (kw, _, _, mode), (p, f) in zip(calls, xs))
        return carry, outs

    with jax.default_device(device("gpu")):
        _, outs = jax.jit(lambda xs: jax.lax.scan(body, 0, xs))(stacked)
    for k, draw_k in enumerate(inputs):
        for j, ((kw, N, C, mode), (p, f)) in enumerate(zip(calls, draw_k)):
            lengths = np.full((1,), N, np.int32)
            _, count, sums = _vectorized_reference(p, f, lengths, kw["voxel_size"],
                                                   kw["point_range"])
            want = sums if mode == "sum" else np.where(count[..., None] > 0,
                                                       sums / np.maximum(count, 1)[..., None], 0)
            got = np.asarray(outs[j][k]).reshape(want.shape)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"draw {k} call {j}")


def _exact_float32_sums(points, features, voxel, prange):
    """Per-voxel sums of float32 features, exact (math.fsum) then rounded to float32."""
    shape = ref.grid_shape(voxel, prange)
    out = np.zeros(shape + (features.shape[-1],), np.float32)
    runs = {}
    for i, p in enumerate(points):
        cell = ref.point_voxel(p, voxel, prange, shape)
        if cell is not None:
            runs.setdefault(cell, []).append(i)
    for cell, idx in runs.items():
        for c in range(features.shape[-1]):
            out[cell + (c,)] = np.float32(math.fsum(features[idx, c].astype(np.float64)))
    return out


@pytest.mark.parametrize("voxel", (0.125, 0.25, 1.0, 2.0),
                         ids=("tiny_runs", "short_runs", "long_runs", "one_voxel"))
def test_gpu_sum_is_exact_and_order_free(rng, voxel):
    """GPU sum: the exact sum of each voxel's features rounded once to float32, so that any
    permutation of the points gives the same bits (runs > 16 points go to the warp path)."""
    skip_unless_platform(None, "gpu")
    prange = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)
    N, C = 6000, 5
    pts = rng.uniform(-1.1, 1.1, (N, 3)).astype(np.float32)
    # wide magnitudes and cancellations: a float32 running sum depends on the order here
    feats = (rng.normal(size=(N, C)) * 10.0 ** rng.integers(-6, 7, (N, C))).astype(np.float32)
    kw = dict(voxel_size=voxel, point_range=prange)
    fn = jax.jit(lambda p, f: (voxelize(p, f, mode="sum", **kw), voxelize(p, f, mode="mean", **kw),
                               voxelize(p, mode="count", **kw)))
    with jax.default_device(device("gpu")):
        total, mean, count = (np.asarray(x) for x in fn(pts, feats))
        perm = rng.permutation(N)
        shuffled = [np.asarray(x) for x in fn(pts[perm], feats[perm])]
    want = _exact_float32_sums(pts, feats, voxel, prange)
    np.testing.assert_array_equal(total, want)
    with np.errstate(invalid="ignore", divide="ignore"):
        want_mean = np.where(count[..., None] > 0, want / count[..., None].astype(np.float32), 0)
    np.testing.assert_array_equal(mean, want_mean.astype(np.float32))
    assert shuffled[0].tobytes() == total.tobytes() and shuffled[1].tobytes() == mean.tobytes()


@pytest.mark.parametrize("ordered", (True, False), ids=("scan_order", "shuffled"))
def test_gpu_sum_runs_at_the_path_boundaries(rng, ordered):
    """Voxels of exactly 1, 2, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65 and 100 points (the
    short-run / warp-run thresholds and the warp width), consecutive as a scan delivers them
    and shuffled, C = 5 (a partial channel group): each voxel's exact sum rounded once."""
    skip_unless_platform(None, "gpu")
    sizes = (1, 2, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100)
    prange = (0.0, 0.0, 0.0, float(len(sizes)), 1.0, 1.0)
    pts = np.concatenate([np.column_stack([k + rng.uniform(0.05, 0.95, n),
                                           rng.uniform(0.05, 0.95, (n, 2))])
                          for k, n in enumerate(sizes)]).astype(np.float32)
    feats = (rng.normal(size=(len(pts), 5)) * 10.0 ** rng.integers(-6, 7, (len(pts), 5))
             ).astype(np.float32)
    if not ordered:
        perm = rng.permutation(len(pts))
        pts, feats = pts[perm], feats[perm]
    kw = dict(voxel_size=1.0, point_range=prange)
    fn = jax.jit(lambda p, f: (voxelize(p, f, mode="sum", **kw), voxelize(p, f, mode="mean", **kw),
                               voxelize(p, mode="count", **kw)))
    with jax.default_device(device("gpu")):
        total, mean, count = (np.asarray(x) for x in fn(pts, feats))
    np.testing.assert_array_equal(count.reshape(-1), sizes)
    want = _exact_float32_sums(pts, feats, 1.0, prange)
    np.testing.assert_array_equal(total, want)
    np.testing.assert_array_equal(mean, (want / count[..., None].astype(np.float32)))


def test_gpu_sum_special_values(rng):
    """GPU sum of one voxel: cancellation is exact; NaN, +-inf follow IEEE; empty voxels are +0."""
    skip_unless_platform(None, "gpu")
    cases = {  # features of the points of voxel 0 -> expected sum
        "cancel": ([1e30, 1.0, -1e30], 1.0), "nan": ([1.0, np.nan, 2.0], np.nan),
        "inf": ([np.inf, 1.0], np.inf), "-inf": ([-np.inf, -1e38, -1e38], -np.inf),
        "inf-inf": ([np.inf, -np.inf], np.nan), "subnormal": ([1e-45, 1e-45, -4e-45], -1e-45),
        "overflow": ([3e38, 3e38], np.inf), "neg_zero": ([-0.0, -0.0], 0.0),
        "tiny+big": ([1e-40, 1.0, -1.0], 1e-40)}
    for name, (values, expected) in cases.items():
        n = len(values)
        pts = np.full((n + 1, 3), 0.1, np.float32)
        pts[-1] = 1.5  # one point in another voxel
        f = np.asarray(values + [7.0], np.float32)[:, None]
        with jax.default_device(device("gpu")):
            out = np.asarray(voxelize(pts, f, voxel_size=1.0, point_range=(0, 0, 0, 2, 2, 2),
                                      mode="sum"))
        got = out[0, 0, 0, 0]
        if np.isnan(expected):
            assert np.isnan(got), (name, got)
        else:
            assert got == np.float32(expected) and np.signbit(got) == np.signbit(expected), (
                name, got)
        assert out[1, 1, 1, 0] == 7.0 and out[0, 1, 0, 0] == 0 and not np.signbit(out[0, 1, 0, 0])


def test_cuda_lowering_custom_calls(monkeypatch, rng):
    """On GPU: one FFI custom call per voxelize; JAX_ROBOCACHE_FORCE_JNP removes it."""
    skip_unless_platform(None, "gpu")
    pts, feats, lengths = clouds(rng, 2, 64, 4)
    targets = {"count": "robocache_voxelize", "occupancy": "robocache_voxelize",
               "max": "robocache_voxelize", "sum": "robocache_voxelize_binned",
               "mean": "robocache_voxelize_binned"}
    with jax.default_device(device("gpu")):
        for mode, target in targets.items():
            f = functools.partial(voxelize, voxel_size=VOXEL, point_range=RANGE, mode=mode)
            hlo = jax.jit(f).lower(pts, feats, lengths=lengths).compile().as_text()
            assert hlo.count(f'custom_call_target="{target}"') == 1, (mode, hlo)
        monkeypatch.setenv("JAX_ROBOCACHE_FORCE_JNP", "1")
        g = functools.partial(voxelize, voxel_size=VOXEL, point_range=RANGE, mode="mean")
        assert "robocache_voxelize" not in jax.jit(g).lower(pts, feats).as_text()


def test_info_reports_voxelize():
    import jax_robocache
    info = jax_robocache.info()
    expected = "cuda-ffi" if (jax.default_backend() == "gpu" and info["cuda_kernels_registered"]
                              and not info["force_jnp"]) else "jnp"
    assert info["ops"]["voxelize"] == expected
