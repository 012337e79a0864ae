"""Outputs on fixed inputs must match the committed golden files (see golden_cases.py)."""

import numpy as np
import pytest

from golden_cases import GOLDEN_DIR, all_cases

import jax_robocache

CASES = all_cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_golden(platform, name):
    path = GOLDEN_DIR / f"{name}.npz"
    assert path.exists(), f"missing golden file {path}; run python tests/golden_cases.py"
    data = dict(np.load(path))
    expected = data.pop("expected")
    op_name, _, params, _ = CASES[name]
    op = getattr(jax_robocache, op_name)
    out = np.asarray(op(**data, **params), np.float64)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_allclose(np.nan_to_num(out), np.nan_to_num(expected), rtol=1e-5,
                               atol=1e-5)
