"""Outputs on fixed inputs must match the committed golden files (see golden_cases.py)."""

import ml_dtypes
import numpy as np
import pytest

from exact import assert_identical
from golden_cases import GOLDEN_DIR, all_cases, expected_key, named_outputs

CASES = all_cases()


def _bfloat16_back(x):
    """npz stores ml_dtypes' bfloat16 as 2-byte void: the only such dtype of our inputs."""
    return x.view(ml_dtypes.bfloat16) if x.dtype.kind == "V" and x.dtype.itemsize == 2 else x


def assert_leaf_matches(out, expected, tol, err):
    out = np.asarray(out)
    assert out.shape == expected.shape, (err, out.shape, expected.shape)
    if out.dtype.kind in "biu" or tol == 0:  # integers, masks, copies: exact, signed zeros too
        assert_identical(out.astype(expected.dtype), expected, err_msg=err)
        return
    out = out.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected), err_msg="NaN " + err)
    np.testing.assert_array_equal(np.isposinf(out), np.isposinf(expected), err_msg="+inf " + err)
    np.testing.assert_array_equal(np.isneginf(out), np.isneginf(expected), err_msg="-inf " + err)
    finite = np.isfinite(expected)
    scale = max(float(np.abs(expected[finite]).max(initial=1.0)), 1.0)
    np.testing.assert_allclose(out[finite], expected[finite], rtol=tol, atol=tol * scale,
                               err_msg=err)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_golden(platform, name):
    path = GOLDEN_DIR / f"{name}.npz"
    assert path.exists(), f"missing golden file {path}; run python tests/golden_cases.py"
    case = CASES[name]
    with np.load(path) as data:
        inputs = {k: _bfloat16_back(data[k]) for k in data.files if not k.startswith("expected")}
        expected = {k: data[k] for k in data.files if k.startswith("expected")}
    outputs = {expected_key(leaf): v for leaf, v in named_outputs(case.run(inputs)).items()}
    assert sorted(outputs) == sorted(expected), f"{name}: outputs differ from the golden file's"
    for key, want in expected.items():
        assert_leaf_matches(outputs[key], want, case.tol, f"{name}: {key}")
