"""points_to_voxels against the independent numpy loop reference, on CPU and (when present) GPU."""

from __future__ import annotations

import functools
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from references import points_to_voxels as reference_p2v
from exact import assert_identical
from conftest import PLATFORMS, device, gpu_available, rng_for, skip_unless_platform
from jax_robocache import VoxelBatch, points_to_voxels
from jax_robocache.voxels.points_to_voxels_cases import PILLAR_SIZE, RANGE, SIZE, make_points

FIELDS = VoxelBatch._fields
# A small grid: 8 x 8 x 3 voxels of 0.3 x 0.5 x 0.4.
VLP16 = os.path.join(os.path.dirname(__file__), os.pardir, "data", "vlp16.npz")


def make_features(rng, lead, N, C, dtype=np.float32):
    if C is None:
        return None
    return jnp.asarray(rng.normal(size=lead + (N, C)).astype(np.float32)).astype(dtype)


def assert_matches(out, ref, err=""):
    """Every field exactly: voxels are copies, so signed zeros and NaN entries must match too
    (whether or not a voxel holds a NaN)."""
    chex.assert_type(out.voxels, jnp.float32)
    for name in FIELDS:
        got = np.asarray(getattr(out, name))
        if name != "voxels":
            assert got.dtype == np.int32, f"{name} {got.dtype}"
        assert_identical(got, ref[name], err_msg=f"{name} {err}")


CASES = {
    # name: (clustered, max_voxels, max_points_per_voxel, voxel_size, C)
    "uniform": (False, 256, 8, SIZE, 2),
    "overflow_points": (True, 64, 3, SIZE, 1),
    "overflow_voxels": (False, 5, 4, SIZE, 5),
    "pillars": (False, 40, 6, PILLAR_SIZE, None),
    "one_slot": (True, 1, 1, SIZE, 3),
    # x 2.4 / 0.35 -> 7 cells (2.45, past max: the range check alone drops [1.4, 1.45)),
    # y 4 / 0.45 -> 9 cells (4.05), z 1.2 / 0.5 -> 2 cells (1.0, short of max)
    "partial_grid": (False, 128, 4, (0.35, 0.45, 0.5), 2),
}


class PointsToVoxelsReferenceTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.product(platform=PLATFORMS, case=tuple(CASES),
                           feature_dtype=("float32", "bfloat16"))
    def test_matches_reference(self, platform, case, feature_dtype):
        skip_unless_platform(self, platform)
        rng = rng_for(self.id())
        clustered, M, P, size, C = CASES[case]
        B, N = int(rng.integers(1, 4)), int(rng.integers(100, 300))
        points = make_points(rng, (B,), N, clustered=clustered)
        features = make_features(rng, (B,), N, C, jnp.dtype(feature_dtype))
        lengths = rng.integers(0, N + 1, B)
        lengths[0] = N
        fn = self.variant(functools.partial(points_to_voxels, voxel_size=size, point_range=RANGE,
                                            max_voxels=M, max_points_per_voxel=P))
        with jax.default_device(device(platform)):
            out = fn(points, features, lengths=lengths)
        ref = reference_p2v.points_to_voxels(points, features, lengths, size, RANGE, M, P)
        W = 3 + (C or 0)
        chex.assert_shape(out.voxels, (B, M, P, W))
        chex.assert_shape([out.coords, out.num_points, out.num_voxels, out.point_to_voxel],
                          [(B, M, 3), (B, M), (B,), (B, N)])
        assert_matches(out, ref, f"{case} B={B} N={N}")
        if case == "overflow_points":
            assert (ref["num_points"] == P).any()  # the case does overflow
        if case == "overflow_voxels":
            # cloud 0 is full (lengths[0] = N); the others may hold too few points to overflow
            assert ref["num_voxels"][0] == M and (ref["point_to_voxel"][0] == -1).any()


def test_range_not_a_whole_number_of_voxels(platform):
    """The range check on its own: max lies inside the last cell (x), or past it (y, z)."""
    from test_voxelize import PARTIAL_KEPT, PARTIAL_POINTS, PARTIAL_RANGE, PARTIAL_VOXEL
    N = len(PARTIAL_POINTS)
    features = np.arange(N, dtype=np.float32)[:, None]
    out = points_to_voxels(PARTIAL_POINTS, features, voxel_size=PARTIAL_VOXEL,
                           point_range=PARTIAL_RANGE, max_voxels=8, max_points_per_voxel=2)
    want = {"voxels": np.zeros((8, 2, 4), np.float32), "coords": np.full((8, 3), -1, np.int32),
            "num_points": np.zeros(8, np.int32), "num_voxels": np.int32(len(PARTIAL_KEPT)),
            "point_to_voxel": np.full(N, -1, np.int32)}
    for row, (i, cell) in enumerate(PARTIAL_KEPT):  # one point per voxel, rows in point order
        want["voxels"][row, 0] = np.r_[PARTIAL_POINTS[i], features[i]]
        want["coords"][row] = cell
        want["num_points"][row] = 1
        want["point_to_voxel"][i] = row
    assert_matches(out, want)


def test_features_copied_bit_for_bit(platform):
    """Voxels are copies: -0.0 stays -0.0, NaN and inf stay, also next to a NaN feature."""
    points = np.array([[0.1, 0.1, 0.1], [0.15, 0.1, 0.1], [0.9, 0.1, 0.1], [0.5, 0.5, 0.5]],
                      np.float32)
    features = np.array([[-0.0, np.nan], [np.inf, -0.0], [-0.0, -1.5], [0.0, -np.inf]],
                        np.float32)
    out = points_to_voxels(points, features, voxel_size=SIZE, point_range=RANGE, max_voxels=4,
                           max_points_per_voxel=2)
    assert_matches(out, reference_p2v.points_to_voxels(points, features, None, SIZE, RANGE, 4, 2),
                   "signed zeros")
    assert np.signbit(np.asarray(out.voxels)[0, 0, 3]) and np.isnan(out.voxels[0, 0, 4])


def test_oversized_output_warns_at_trace_time():
    """max_voxels far above N with gigabytes of output warns; realistic configs do not."""
    import warnings
    from jax_robocache.voxels import OversizedOutputWarning
    cloud = jax.ShapeDtypeStruct((1000, 3), jnp.float32)
    huge = functools.partial(points_to_voxels, voxel_size=0.1, point_range=RANGE,
                             max_voxels=10**7, max_points_per_voxel=64)
    with pytest.warns(OversizedOutputWarning, match=r"max_voxels=10000000.*N=1000.*GiB"):
        jax.eval_shape(huge, cloud)  # traced, never allocated
    with pytest.warns(OversizedOutputWarning):  # under jit: when it is traced
        jax.jit(functools.partial(huge, max_points_per_voxel=32)).lower(cloud)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OversizedOutputWarning)
        # PointPillars-like: 12000 rows of 100 slots for 120k points, a batch of 16 (~1 GiB)
        jax.eval_shape(functools.partial(points_to_voxels, voxel_size=0.16, point_range=RANGE,
                                         max_voxels=12000, max_points_per_voxel=100),
                       jax.ShapeDtypeStruct((16, 120_000, 3), jnp.float32))
        # many more rows than points, but small
        jax.eval_shape(functools.partial(huge, max_voxels=10**5), cloud)


def test_padded_batch_and_broadcasting(platform, rng):
    """Leading dims [2, 3], features shared by all clouds, lengths out of [0, N] clamped."""
    N, C = 120, 3
    points = make_points(rng, (2, 3), N)
    features = make_features(rng, (), N, C)
    lengths = np.array([0, 7, N + 5, -2, N, 33])
    out = points_to_voxels(points, features, voxel_size=SIZE, point_range=RANGE, max_voxels=30,
                           max_points_per_voxel=5, lengths=lengths.reshape(2, 3))
    ref = reference_p2v.points_to_voxels(points, features, lengths.reshape(2, 3), SIZE, RANGE,
                                         30, 5)
    assert_matches(out, ref)
    assert int(out.num_voxels[0, 0]) == 0 and (np.asarray(out.point_to_voxel[0, 0]) == -1).all()
    # padding beyond lengths never counts, whatever it holds
    padded = points.copy()
    padded[0, 1, 7:] = 0.1
    again = points_to_voxels(padded, features, voxel_size=SIZE, point_range=RANGE,
                             max_voxels=30, max_points_per_voxel=5,
                             lengths=lengths.reshape(2, 3))
    for name in FIELDS:
        assert_identical(getattr(again, name), getattr(out, name), name)


@pytest.mark.parametrize("what", ["no_points", "all_out_of_range", "all_nan", "zero_lengths",
                                  "no_clouds"])
def test_empty_clouds(platform, rng, what):
    B, N = 3, 40
    points = make_points(rng, (B,), N)
    lengths = None
    if what == "no_points":
        points = points[:, :0]
    elif what == "all_out_of_range":
        points = points + np.float32(10.0)
    elif what == "all_nan":
        points[...] = np.nan
    elif what == "zero_lengths":
        lengths = np.zeros(B, np.int32)
    elif what == "no_clouds":
        points = points[:0]
    out = points_to_voxels(points, make_features(rng, points.shape[:1], points.shape[1], 2),
                           voxel_size=SIZE, point_range=RANGE, max_voxels=7,
                           max_points_per_voxel=3, lengths=lengths)
    b, n = points.shape[:2]
    chex.assert_shape([out.voxels, out.point_to_voxel], [(b, 7, 3, 5), (b, n)])
    np.testing.assert_array_equal(out.voxels, 0.0)
    np.testing.assert_array_equal(out.coords, -1)
    np.testing.assert_array_equal(out.num_points, 0)
    np.testing.assert_array_equal(out.num_voxels, 0)
    np.testing.assert_array_equal(out.point_to_voxel, -1)


def test_vmap_matches_loop(platform, rng):
    B, N, C = 5, 90, 2
    points = make_points(rng, (B,), N, clustered=True)
    features = make_features(rng, (B,), N, C)
    lengths = rng.integers(0, N + 1, B)
    f = functools.partial(points_to_voxels, voxel_size=SIZE, point_range=RANGE, max_voxels=20,
                          max_points_per_voxel=4)
    batched = jax.vmap(lambda p, x, n: f(p, x, lengths=n))(points, features, lengths)
    looped = [f(points[b], features[b], lengths=lengths[b]) for b in range(B)]
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(batched, name),
                                      np.stack([getattr(o, name) for o in looped]))
    ref = reference_p2v.points_to_voxels(points, features, lengths, SIZE, RANGE, 20, 4)
    assert_matches(batched, ref)
    # unbatched features (shared), and vmap over a non-leading axis
    shared = jax.vmap(f, in_axes=(0, None))(points, features[0])
    assert_matches(shared, reference_p2v.points_to_voxels(
        points, np.broadcast_to(np.asarray(features[0]), (B, N, C)), None, SIZE, RANGE, 20, 4))
    swapped = jax.vmap(f, in_axes=(1, 1))(points.swapaxes(0, 1), features.swapaxes(0, 1))
    assert_matches(swapped, reference_p2v.points_to_voxels(points, features, None, SIZE, RANGE,
                                                           20, 4))
    # only lengths mapped: one cloud shared by every batch element
    only_lengths = jax.vmap(lambda n: f(points[0], features[0], lengths=n))(lengths)
    assert_matches(only_lengths, reference_p2v.points_to_voxels(
        np.broadcast_to(points[0], (B, N, 3)), np.broadcast_to(np.asarray(features[0]), (B, N, C)),
        lengths, SIZE, RANGE, 20, 4))


def test_jit_with_traced_lengths_and_scan(platform, rng):
    points = make_points(rng, (2,), 64)
    f = jax.jit(lambda p, n: points_to_voxels(p, voxel_size=SIZE, point_range=RANGE,
                                              max_voxels=16, max_points_per_voxel=4, lengths=n))
    for n in ([64, 10], [0, 64]):
        ref = reference_p2v.points_to_voxels(points, None, np.array(n), SIZE, RANGE, 16, 4)
        assert_matches(f(points, np.array(n, np.int32)), ref)

    def body(carry, shift):
        out = points_to_voxels(points + shift, voxel_size=SIZE, point_range=RANGE, max_voxels=16,
                               max_points_per_voxel=4)
        return carry + out.num_voxels.sum(), out.num_points

    shifts = np.array([0.0, 0.1, -0.2], np.float32)
    _, per_step = jax.jit(lambda s: jax.lax.scan(body, jnp.int32(0), s))(shifts)
    for k, s in enumerate(shifts):
        ref = reference_p2v.points_to_voxels(points + s, None, None, SIZE, RANGE, 16, 4)
        np.testing.assert_array_equal(per_step[k], ref["num_points"])


def _vlp16():
    return np.load(VLP16)["xyzil"]


@pytest.mark.parametrize("setup", ["voxels", "pillars"])
def test_real_vlp16_scan(platform, setup):
    """One real Velodyne VLP-16 revolution (11305 points), features = intensity and ring."""
    scan = _vlp16()
    points, features = scan[:, :3], scan[:, 3:]
    if setup == "voxels":  # SECOND-like around the sensor
        size, rng_, M, P = (0.4, 0.4, 0.5), (-30.0, -30.0, -3.0, 30.0, 30.0, 3.0), 3000, 5
    else:  # PointPillars-like
        size, rng_, M, P = (0.64, 0.64, 8.0), (-40.0, -40.0, -4.0, 40.0, 40.0, 4.0), 1200, 16
    out = points_to_voxels(points, features, voxel_size=size, point_range=rng_, max_voxels=M,
                           max_points_per_voxel=P)
    ref = reference_p2v.points_to_voxels(points, features, None, size, rng_, M, P)
    assert_matches(out, ref, setup)
    # the scan exercises every rule: dropped points, full voxels, and (pillars) the row cap
    assert (ref["point_to_voxel"] == -1).any() and (ref["num_points"] == P).any()
    if setup == "pillars":
        assert int(ref["num_voxels"]) == M


def test_wide_keys_and_many_tiles(platform, rng):
    """A 2048 x 2048 x 64 grid and 24 clouds: B * voxels > 2**32 (64-bit sort keys), > 2048 points.

    Power-of-two voxel sizes keep this test independent of how the division in
    the shared cell rule is compiled (see test_cell_faces_follow_ieee_division).
    """
    size, rng_ = (0.0625, 0.0625, 0.125), (0.0, -64.0, -4.0, 128.0, 64.0, 4.0)
    B, N = 24, 150
    lo, hi = np.array(rng_[:3]), np.array(rng_[3:])
    centers = rng.uniform(lo, hi, (B, 6, 3))
    points = (centers[np.arange(B)[:, None], rng.integers(0, 6, (B, N))]
              + rng.normal(0, 0.05, (B, N, 3))).astype(np.float32)
    features = make_features(rng, (B,), N, 1)
    lengths = rng.integers(N // 2, N + 1, B)
    out = points_to_voxels(points, features, voxel_size=size, point_range=rng_, max_voxels=40,
                           max_points_per_voxel=6, lengths=lengths)
    assert_matches(out, reference_p2v.points_to_voxels(points, features, lengths, size, rng_,
                                                       40, 6))


def test_cell_faces_follow_ieee_division(platform):
    """Points on and one ulp around every cell face of the KITTI grid: IEEE float32 division."""
    size, rng_ = (0.05, 0.05, 0.1), (0.0, -40.0, -3.0, 70.4, 40.0, 1.0)
    lo, hi = np.array(rng_[:3]), np.array(rng_[3:])
    center = ((lo + hi) / 2).astype(np.float32)
    for a, cells in enumerate((1408, 1600, 40)):
        face = (lo[a] + np.arange(cells) * size[a]).astype(np.float32)
        vals = np.concatenate([face, np.nextafter(face, np.float32(np.inf)),
                               np.nextafter(face, np.float32(-np.inf))])
        points = np.tile(center, (len(vals), 1))
        points[:, a] = vals
        out = points_to_voxels(points, voxel_size=size, point_range=rng_, max_voxels=len(vals),
                               max_points_per_voxel=1)
        ref = reference_p2v.points_to_voxels(points, None, None, size, rng_, len(vals), 1)
        for name in ("coords", "point_to_voxel"):
            np.testing.assert_array_equal(getattr(out, name), ref[name], err_msg=f"axis {a}")


def test_features_dtypes_and_nan_features(platform, rng):
    points = make_points(rng, (), 50, bad=0.0)
    feats = rng.normal(size=(50, 2)).astype(np.float32)
    feats[3, 1] = np.nan
    f = functools.partial(points_to_voxels, voxel_size=SIZE, point_range=RANGE, max_voxels=60,
                          max_points_per_voxel=8)
    out = f(points, feats)
    ref = reference_p2v.points_to_voxels(points, feats, None, SIZE, RANGE, 60, 8)
    assert_matches(out, ref)  # NaN features are copied like any value
    for dtype in (jnp.bfloat16, jnp.float16):
        low = jnp.asarray(feats).astype(dtype)
        out = f(points, low)
        assert out.voxels.dtype == jnp.float32
        ref = reference_p2v.points_to_voxels(points, np.asarray(low.astype(jnp.float32)), None,
                                             SIZE, RANGE, 60, 8)
        assert_matches(out, ref)


def test_voxels_gradient(platform, rng):
    """voxels is a copy of the kept points: d sum(w * voxels) / d points = w at their slot."""
    N = 60
    points = make_points(rng, (), N, clustered=True, bad=0.1)
    features = rng.normal(size=(N, 2)).astype(np.float32)
    kw = dict(voxel_size=SIZE, point_range=RANGE, max_voxels=6, max_points_per_voxel=3)
    out = points_to_voxels(points, features, **kw)
    w = rng.normal(size=out.voxels.shape).astype(np.float32)
    loss = lambda p, x: jnp.sum(w * points_to_voxels(p, x, **kw).voxels)  # noqa: E731
    gp, gf = jax.jit(jax.grad(loss, argnums=(0, 1)))(points, features)
    want_p, want_f = np.zeros((N, 3), np.float32), np.zeros((N, 2), np.float32)
    slot = {}
    for i, r in enumerate(np.asarray(out.point_to_voxel)):
        if r >= 0:
            k = slot.get(r, 0)
            slot[r] = k + 1
            want_p[i], want_f[i] = w[r, k, :3], w[r, k, 3:]
    np.testing.assert_array_equal(gp, want_p)
    np.testing.assert_array_equal(gf, want_f)
    # forward mode too
    t = jax.jvp(lambda p: points_to_voxels(p, features, **kw).voxels, (points,),
                (np.ones_like(points),))[1]
    filled = np.arange(3)[None, :] < np.asarray(out.num_points)[:, None]  # [M, P]
    np.testing.assert_array_equal(np.asarray(t)[..., :3],
                                  np.broadcast_to(filled[..., None], (6, 3, 3)).astype(np.float32))
    np.testing.assert_array_equal(np.asarray(t)[..., 3:], 0.0)


def test_bitwise_reproducible_and_cpu_equals_gpu(rng):
    """GPU kernel: identical bits on every run, and identical to the CPU lowering."""
    skip_unless_platform(None, "gpu")
    B, N = 3, 20000
    points = make_points(rng, (B,), N, clustered=True)
    features = make_features(rng, (B,), N, 1)
    f = jax.jit(functools.partial(points_to_voxels, voxel_size=SIZE, point_range=RANGE,
                                  max_voxels=150, max_points_per_voxel=32))
    with jax.default_device(device("gpu")):
        runs = [jax.device_get(f(points, features)) for _ in range(4)]
    with jax.default_device(device("cpu")):
        cpu = jax.device_get(f(points, features))
    for run in runs[1:] + [cpu]:
        for name in FIELDS:
            a, b = np.asarray(getattr(runs[0], name)), np.asarray(getattr(run, name))
            np.testing.assert_array_equal(a.view(np.uint32) if a.dtype == np.float32 else a,
                                          b.view(np.uint32) if b.dtype == np.float32 else b)
    ref = reference_p2v.points_to_voxels(points, features, None, SIZE, RANGE, 150, 32)
    assert_matches(runs[0], ref)


def test_cuda_lowering_is_one_custom_call(monkeypatch, rng):
    skip_unless_platform(None, "gpu")
    points = make_points(rng, (2,), 100)
    f = lambda p: points_to_voxels(p, voxel_size=SIZE, point_range=RANGE,  # noqa: E731
                                   max_voxels=10, max_points_per_voxel=4)
    with jax.default_device(device("gpu")):
        hlo = jax.jit(f).lower(points).compile().as_text()
        assert hlo.count('custom_call_target="robocache_points_to_voxels"') == 1, hlo
        monkeypatch.setenv("JAX_ROBOCACHE_FORCE_JNP", "1")
        g = lambda p: points_to_voxels(p, voxel_size=SIZE, point_range=RANGE,  # noqa: E731
                                       max_voxels=10, max_points_per_voxel=4)
        assert "robocache_points_to_voxels" not in jax.jit(g).lower(points).as_text()


def test_info_reports_backend():
    import jax_robocache
    info = jax_robocache.info()
    expected = "cuda-ffi" if (jax.default_backend() == "gpu" and info["cuda_kernels_registered"]
                              and not info["force_jnp"]) else "jnp"
    assert info["ops"]["points_to_voxels"] == expected
    assert gpu_available() or info["ops"]["points_to_voxels"] == "jnp"


def test_trace_time_errors():
    p = np.zeros((2, 10, 3), np.float32)
    kw = dict(voxel_size=0.5, point_range=RANGE, max_voxels=4, max_points_per_voxel=2)
    with pytest.raises(TypeError, match="points"):
        points_to_voxels(p.astype(np.float16), **kw)
    with pytest.raises(ValueError, match="points"):
        points_to_voxels(p[..., :2], **kw)
    with pytest.raises(ValueError, match="points"):
        points_to_voxels(np.zeros(3, np.float32), **kw)
    with pytest.raises(TypeError, match="features"):
        points_to_voxels(p, np.zeros((2, 10, 1), np.int32), **kw)
    with pytest.raises(ValueError, match="features"):
        points_to_voxels(p, np.zeros((2, 9, 1), np.float32), **kw)
    with pytest.raises(ValueError, match="leading"):
        points_to_voxels(p, np.zeros((3, 10, 1), np.float32), **kw)
    with pytest.raises(TypeError, match="lengths"):
        points_to_voxels(p, lengths=np.ones(2, np.float32), **kw)
    with pytest.raises(ValueError, match="max_voxels"):
        points_to_voxels(p, **{**kw, "max_voxels": 0})
    with pytest.raises(TypeError, match="max_points_per_voxel"):
        points_to_voxels(p, **{**kw, "max_points_per_voxel": 2.5})
    with pytest.raises(ValueError, match="max_points_per_voxel"):
        points_to_voxels(p, **{**kw, "max_points_per_voxel": True})
    with pytest.raises(ValueError, match="voxel_size"):
        points_to_voxels(p, **{**kw, "voxel_size": -1.0})
    with pytest.raises(ValueError, match="point_range"):
        points_to_voxels(p, **{**kw, "point_range": (0, 0, 0, 1, 1, -1)})
    with pytest.raises(ValueError, match="int32"):
        points_to_voxels(p, **{**kw, "voxel_size": 1e-4})
    # errors happen at trace time under jit too
    with pytest.raises(ValueError, match="points"):
        jax.jit(lambda q: points_to_voxels(q[..., :2], **kw))(p)
