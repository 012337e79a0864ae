"""Eager calls go through one cached jit (_core/eager.py) without losing a check."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_robocache as rc
from jax_robocache._core import eager


def test_staged_traces_once_per_static_args_and_shapes():
    traces = []

    def body(x, *, k):
        traces.append(k)
        return x * k

    x = jnp.arange(4.0)
    for _ in range(3):
        np.testing.assert_array_equal(eager.staged(body, x, k=2), np.arange(4.0) * 2)
    assert traces == [2]
    eager.staged(body, x, k=3)
    eager.staged(body, jnp.arange(5.0), k=3)
    assert traces == [2, 3, 3]


def test_staged_runs_directly_under_transformations():
    calls = []

    def body(x, *, k):
        calls.append(type(x).__name__)
        return jnp.sin(x) * k

    x = jnp.linspace(0, 1, 5)
    g = jax.grad(lambda x: eager.staged(body, x, k=2.0).sum())(x)
    np.testing.assert_allclose(g, 2 * np.cos(np.linspace(0, 1, 5)), rtol=1e-6)
    v = jax.vmap(lambda x: eager.staged(body, x, k=2.0))(x[:, None])
    np.testing.assert_allclose(v[:, 0], 2 * np.sin(np.linspace(0, 1, 5)), rtol=1e-6)
    assert len(calls) == 2  # each transformation traced the body itself


def _resample_inputs(rng):
    values = jnp.asarray(rng.normal(size=(3, 20, 2)), jnp.float32)
    times = jnp.asarray(np.cumsum(rng.uniform(0.1, 0.2, (3, 20)), axis=1), jnp.float32)
    query = jnp.asarray(rng.uniform(0, 3, (3, 7)), jnp.float32)
    return values, times, query


def test_eager_equals_jit_and_checks_still_raise_after_a_cached_call(rng):
    values, times, query = _resample_inputs(rng)
    out = rc.resample(values, times, query)
    np.testing.assert_array_equal(out, jax.jit(rc.resample)(values, times, query))
    with pytest.raises(TypeError, match="values"):
        rc.resample(values.astype(jnp.int32), times, query)
    with pytest.raises(ValueError):
        rc.resample(values, times, query, method="cubic")
    # float32 epoch seconds cannot be resolved: the eager error still comes from known values
    epoch = times + jnp.float32(1.7e9)
    with pytest.raises(ValueError, match="cannot be resolved"):
        rc.resample(values, epoch, query + jnp.float32(1.7e9))


def test_voxelize_eager_equals_jit_and_bad_input_raises(rng):
    points = jnp.asarray(rng.uniform(-1, 1, (2, 50, 3)), jnp.float32)
    grid = dict(voxel_size=0.5, point_range=(-1, -1, -1, 1, 1, 1))
    eager_out = rc.voxelize(points, mode="count", **grid)
    jitted = jax.jit(lambda p: rc.voxelize(p, mode="count", **grid))(points)
    np.testing.assert_array_equal(eager_out, jitted)
    assert int(eager_out.sum()) == 100
    with pytest.raises((TypeError, ValueError), match="points"):
        rc.voxelize(points[..., :2], mode="count", **grid)
