"""Conformance of every op to JAX's transformations: vmap over any argument, and friends.

For each op (resample, align, fuse_multimodal, voxelize, points_to_voxels) and each
non-empty subset of its array arguments (all of them for the ops with up to four;
singletons, all and a few pairs for fuse_multimodal's seven), the mapped arguments get
the vmapped axis first, last or in the middle and the outputs come out at axis 0 or 1
(the combinations cycle over the subsets, so each position and out_axes occurs for each
op). Then nested vmap, vmap of grad, grad of vmap, jit of vmap, lax.scan and
shard_map. Every result is compared with a Python loop over the unbatched op, and
every loop result with the independent float64 numpy reference (tests/reference*.py).

Inputs are fresh random, small, with ragged lengths; the `platform` fixture runs
every case on CPU and, where a GPU with the kernels is present, on the GPU too (the
device run); shard_map needs two devices of the platform (CPU: conftest's
--xla_force_host_platform_device_count).
"""

from __future__ import annotations

import functools
import itertools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec as P

from references import resample as reference
from references import align as reference_align
from references import points_to_voxels as reference_p2v
from references import voxelize as reference_voxel
from jax_robocache import Stream, align, fuse_multimodal, points_to_voxels, resample, voxelize

V = 3  # size of the vmapped axis


class Op(NamedTuple):
    name: str
    fn: Callable  # unbatched arrays -> pytree of outputs
    make: Callable  # rng -> tuple of unbatched numpy arrays
    ref: Callable  # unbatched numpy arrays -> list of float64 / int / bool outputs (leaf order)
    grad_arg: int  # a float argument the float outputs are differentiable by
    tol: float


# -- the ops, one unbatched instance each -------------------------------------------
def _times(rng, S, lo=0.0, hi=1.0):
    return np.sort(rng.uniform(lo, hi, S)).astype(np.float32)


def _make_resample(rng):
    S, D, T = 12, 3, 5
    return (rng.normal(size=(S, D)).astype(np.float32), _times(rng, S),
            rng.uniform(-0.1, 1.1, T).astype(np.float32), np.int32(rng.integers(2, S + 1)))


def _resample(v, t, q, n):
    return resample(v, t, q, lengths=n, return_valid=True)


def _ref_resample(v, t, q, n):
    return list(reference.resample_episode(v, t, q, n, "linear", "clamp"))


# align: the mapped stream "a" (linear) and a fixed stream "b" (previous, tolerance) that no
# vmap touches: unbatched streams with a batched clock are one of the cases.
_B_VALUES = np.linspace(-1, 1, 14, dtype=np.float32).reshape(7, 2)
_B_TIMES = np.linspace(0.05, 0.95, 7, dtype=np.float32)


def _align(q, v, t, n):
    res = align({"a": Stream(v, t, lengths=n),
                 "b": Stream(_B_VALUES, _B_TIMES, method="previous", tolerance=0.2)}, q)
    return [res.values["a"], res.values["b"], res.valid["a"], res.valid["b"], res.age["a"],
            res.age["b"]]


def _make_align(rng):
    v, t, q, n = _make_resample(rng)
    return q, v, t, n


def _ref_align(q, v, t, n):
    a = reference_align.align_stream_episode(v, t, q, n, method="linear")
    b = reference_align.align_stream_episode(_B_VALUES, _B_TIMES, q, 7, method="previous",
                                             tolerance=0.2)
    return [a[0], b[0], a[1], b[1], a[2], b[2]]


def _make_fuse(rng):
    out = []
    for S, D in ((6, 4), (10, 2), (15, 3)):
        out += [rng.normal(size=(S, D)).astype(np.float32), _times(rng, S)]
    return (*out, rng.uniform(-0.1, 1.1, 5).astype(np.float32))


def _ref_fuse(*args):
    q = args[6]
    parts = [reference.resample_episode(args[2 * k], args[2 * k + 1], q, len(args[2 * k + 1]),
                                        "linear", "clamp")[0] for k in range(3)]
    return [np.concatenate(parts, axis=-1)]


VOXEL, RANGE = 0.25, (-1.0, -1.0, -1.0, 1.0, 1.0, 0.9)  # z: not a whole number of voxels


def _make_cloud(rng):
    N, C = 40, 2
    pts = rng.uniform(-1.2, 1.2, (N, 3)).astype(np.float32)
    faces = rng.random(N) < 0.3  # on voxel faces (x = 1.0, the range's max, included)
    pts[faces] = np.round(pts[faces] * 4) / 4
    return pts, rng.normal(size=(N, C)).astype(np.float32), np.int32(rng.integers(N // 2, N + 1))


def _voxelize(p, f, n):
    return voxelize(p, f, voxel_size=VOXEL, point_range=RANGE, mode="sum", lengths=n)


def _ref_voxelize(p, f, n):
    return [reference_voxel.voxelize_cloud(p, f, n, VOXEL, RANGE, "sum")]


M, PMAX = 12, 3


def _p2v(p, f, n):
    return points_to_voxels(p, f, voxel_size=VOXEL, point_range=RANGE, max_voxels=M,
                            max_points_per_voxel=PMAX, lengths=n)


def _ref_p2v(p, f, n):
    r = reference_p2v.cloud(p, f, n, VOXEL, RANGE, M, PMAX)
    return [r[k] for k in ("voxels", "coords", "num_points", "num_voxels", "point_to_voxel")]


OPS = {op.name: op for op in (
    Op("resample", _resample, _make_resample, _ref_resample, 2, 2e-5),
    Op("align", _align, _make_align, _ref_align, 0, 2e-5),
    Op("fuse_multimodal", fuse_multimodal, _make_fuse, _ref_fuse, 6, 2e-5),
    Op("voxelize", _voxelize, _make_cloud, _ref_voxelize, 1, 2e-5),
    Op("points_to_voxels", _p2v, _make_cloud, _ref_p2v, 1, 0.0),
)}


# -- comparisons ----------------------------------------------------------------------
def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def assert_close(got, want, tol, err=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (err, got.shape, want.shape)
    if got.dtype.kind in "biu" or tol == 0:
        np.testing.assert_array_equal(got, want.astype(got.dtype), err_msg=err)
        return
    got, want = got.astype(np.float64), want.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg="NaN " + err)
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want), err_msg="inf " + err)
    ok = np.isfinite(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=tol, atol=tol, err_msg=err)


def instances(op, rng, count):
    """``count`` independent unbatched instances of the op's arguments."""
    return [op.make(rng) for _ in range(count)]


def loop(op, insts, mapped):
    """The unbatched op per index; argument i from instance v if mapped, else instance 0."""
    return [leaves(op.fn(*[inst[i] if i in mapped else insts[0][i]
                           for i in range(len(inst))])) for inst in insts]


def check_against_loop_and_reference(op, got, insts, mapped, out_axis=0, err=""):
    per = loop(op, insts, mapped)
    got = leaves(got)
    assert len(got) == len(per[0]), err
    for k in range(len(got)):  # out_axis 1 puts rank-0 outputs at their axis 0
        want = np.stack([p[k] for p in per], axis=min(out_axis, per[0][k].ndim))
        assert_close(got[k], want, max(op.tol, 1e-6) if op.tol else 0.0, f"{err} output {k}")
    for v, inst in enumerate(insts):  # the loop itself against the float64 reference
        args = [inst[i] if i in mapped else insts[0][i] for i in range(len(inst))]
        for k, (out, ref) in enumerate(zip(per[v], op.ref(*args))):
            assert_close(out, ref, op.tol, f"{err} reference, index {v}, output {k}")


def stack(insts, i, axis):
    return np.stack([inst[i] for inst in insts], axis=axis)


def axis_for(position, ndim):
    return {"first": 0, "last": ndim, "middle": ndim // 2}[position]


# -- vmap over each subset ------------------------------------------------------------------
def subset_cases():
    cases = []
    for name, op in OPS.items():
        n = 7 if name == "fuse_multimodal" else (4 if name in ("resample", "align") else 3)
        if n <= 4:
            subsets = [s for r in range(1, n + 1) for s in itertools.combinations(range(n), r)]
        else:
            subsets = [(i,) for i in range(n)] + [tuple(range(n)), (0, 6), (1, 3, 5), (6, 2)]
        for j, subset in enumerate(subsets):
            position = ("first", "last", "middle")[j % 3]
            out_axis = (j // 3) % 2 if j >= 3 else j % 2
            cases.append(pytest.param(name, subset, position, out_axis,
                                      id=f"{name}-{'+'.join(map(str, subset))}-{position}"
                                         f"-out{out_axis}"))
    return cases


@pytest.mark.parametrize("name,subset,position,out_axis", subset_cases())
def test_vmap_subset(platform, rng, name, subset, position, out_axis):
    op = OPS[name]
    insts = instances(op, rng, V)
    args, in_axes = [], []
    for i, x in enumerate(insts[0]):
        if i in subset:
            ax = axis_for(position, np.ndim(x))
            args.append(stack(insts, i, ax))
            in_axes.append(ax)
        else:
            args.append(x)
            in_axes.append(None)
    out_axes = jax.tree.map(lambda s: min(out_axis, s.ndim), jax.eval_shape(op.fn, *insts[0]))
    got = jax.vmap(op.fn, in_axes=tuple(in_axes), out_axes=out_axes)(*args)
    check_against_loop_and_reference(op, got, insts, set(subset), out_axis,
                                      f"{name} {subset} {position} out_axes={out_axis}")


# -- transformations ------------------------------------------------------------------------
def float_loss(op, *args):
    outs = [o for o in jax.tree.leaves(op.fn(*args)) if jnp.issubdtype(o.dtype, jnp.floating)]
    return sum(jnp.sum(jnp.where(jnp.isfinite(o), o, 0).astype(jnp.float32)) for o in outs)


def per_index_grads(op, insts, mapped):
    g = jax.grad(functools.partial(float_loss, op), argnums=op.grad_arg)
    return np.stack([np.asarray(g(*[inst[i] if i in mapped else insts[0][i]
                                    for i in range(len(inst))])) for inst in insts])


@pytest.mark.parametrize("name", sorted(OPS))
def test_nested_vmap(platform, rng, name):
    """Outer vmap over every argument, inner vmap over the differentiable one only."""
    op = OPS[name]
    outer = [instances(op, rng, 2) for _ in range(V)]  # outer[v][w]: inner index w
    g = op.grad_arg
    args = []
    for i in range(len(outer[0][0])):
        if i == g:
            args.append(np.stack([np.stack([o[w][i] for w in range(2)]) for o in outer]))
        else:
            args.append(np.stack([o[0][i] for o in outer]))
    inner = jax.vmap(op.fn, in_axes=tuple(0 if i == g else None for i in range(len(args))))
    got = leaves(jax.vmap(inner)(*args))
    for v in range(V):
        want = loop(op, outer[v], {g})
        for k, x in enumerate(got):
            assert_close(x[v], np.stack([w[k] for w in want]), max(op.tol, 1e-6),
                         f"{name} nested [{v}] output {k}")


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("mapped", ["grad arg", "all"])
def test_vmap_of_grad(platform, rng, name, mapped):
    op = OPS[name]
    for _ in range(5):  # a draw whose gradient is not all zero (e.g. every query clamped)
        insts = instances(op, rng, V)
        n = len(insts[0])
        subset = {op.grad_arg} if mapped == "grad arg" else set(range(n))
        want = per_index_grads(op, insts, subset)
        if np.abs(want).max() > 0:
            break
    args = [stack(insts, i, 0) if i in subset else insts[0][i] for i in range(n)]
    grad = jax.grad(functools.partial(float_loss, op), argnums=op.grad_arg)
    got = jax.vmap(grad, in_axes=tuple(0 if i in subset else None for i in range(n)))(*args)
    assert np.isfinite(want).all() and np.abs(want).max() > 0  # a gradient that can fail
    assert_close(got, want, 1e-5, f"{name} vmap(grad)")


@pytest.mark.parametrize("name", sorted(OPS))
def test_grad_of_vmap(platform, rng, name):
    op = OPS[name]
    insts = instances(op, rng, V)
    n, g = len(insts[0]), op.grad_arg
    others = [stack(insts, i, 0) for i in range(n)]

    def total(x):
        args = others[:g] + [x] + others[g + 1:]
        return jnp.sum(jax.vmap(functools.partial(float_loss, op))(*args))

    got = jax.grad(total)(stack(insts, g, 0))
    want = per_index_grads(op, insts, set(range(n)))
    assert_close(got, want, 1e-5, f"{name} grad(vmap)")


@pytest.mark.parametrize("name", sorted(OPS))
def test_jit_of_vmap(platform, rng, name):
    op = OPS[name]
    insts = instances(op, rng, V)
    n = len(insts[0])
    args = [stack(insts, i, np.ndim(insts[0][i])) for i in range(n)]  # every axis last
    out_axes = jax.tree.map(lambda s: min(1, s.ndim), jax.eval_shape(op.fn, *insts[0]))
    fn = jax.jit(jax.vmap(op.fn, in_axes=tuple(np.ndim(x) for x in insts[0]),
                          out_axes=out_axes))
    check_against_loop_and_reference(op, fn(*args), insts, set(range(n)), 1, f"{name} jit")


@pytest.mark.parametrize("name", sorted(OPS))
def test_scan(platform, rng, name):
    op = OPS[name]
    insts = instances(op, rng, V)
    g = op.grad_arg
    xs = stack(insts, g, 0)
    fixed = list(insts[0])

    def body(carry, x):
        return carry, op.fn(*fixed[:g], x, *fixed[g + 1:])

    _, got = jax.lax.scan(body, None, xs)
    check_against_loop_and_reference(op, got, insts, {g}, 0, f"{name} scan")


@pytest.mark.parametrize("name", sorted(OPS))
def test_shard_map(platform, rng, name):
    devs = jax.devices(platform)
    if len(devs) < 2:
        pytest.skip(f"needs 2 {platform} devices, found {len(devs)}")
    op = OPS[name]
    insts = instances(op, rng, 4)  # 2 per device
    n, g = len(insts[0]), op.grad_arg
    mesh = Mesh(np.array(devs[:2]), ("x",))
    subset = {g, 0} if g else {0, n - 1}  # mapped: the differentiable and one more
    args = [stack(insts, i, 0) if i in subset else insts[0][i] for i in range(n)]
    specs = tuple(P("x") if i in subset else P() for i in range(n))
    fn = jax.vmap(op.fn, in_axes=tuple(0 if i in subset else None for i in range(n)))
    sharded = jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=P("x")))
    check_against_loop_and_reference(op, sharded(*args), insts, subset, 0, f"{name} shard_map")
