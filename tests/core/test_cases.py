"""The case catalogues (jax_robocache/<family>/<op>_cases.py): one per op, reproducible, and
every case's batched arrays carry the batch on axis 0 (what the sharding tests and the GPU
workload rely on)."""

from __future__ import annotations

import importlib
from pathlib import Path

import jax
import numpy as np
import pytest

import jax_robocache
from jax_robocache._core.primitive import REGISTRY

PACKAGE = Path(jax_robocache.__file__).parent
CATALOGUES = {path.stem[:-len("_cases")]: f"jax_robocache.{path.parent.name}.{path.stem}"
              for path in sorted(PACKAGE.glob("*/*_cases.py"))}


def test_every_op_has_one_catalogue():
    assert sorted(CATALOGUES) == sorted(REGISTRY), (
        "each op needs jax_robocache/<family>/<op>_cases.py (docs/contributing_python.md)")


@pytest.mark.parametrize("op", sorted(CATALOGUES))
def test_cases_are_reproducible_and_batched(op, rng):
    catalogue = importlib.import_module(CATALOGUES[op])
    assert catalogue.CASES, op
    seed = int(rng.integers(2**31))
    for name, case in catalogue.CASES.items():
        err = f"{op} case {name!r} (seed {seed})"
        assert case.name == name, err
        B = 3
        first = case.make(np.random.default_rng(seed), B=B)
        again = case.make(np.random.default_rng(seed), B=B)
        assert list(first.arrays) == list(again.arrays), err
        for key, value in first.arrays.items():
            assert isinstance(value, np.ndarray), (err, key, type(value))
            np.testing.assert_array_equal(value, again.arrays[key], err_msg=f"{err}: {key}")
        assert first.batched and set(first.batched) <= set(first.arrays), err
        for key in first.batched:
            assert first.arrays[key].shape[0] == B, (err, key, first.arrays[key].shape)
        fn, args = first.positional()
        leaves = jax.tree.leaves(jax.jit(fn)(*args))
        assert leaves and all(leaf.shape[0] == B for leaf in leaves if leaf.ndim), err
        for leaf, direct in zip(leaves, jax.tree.leaves(first())):
            np.testing.assert_array_equal(np.asarray(leaf), np.asarray(direct), err_msg=err)
