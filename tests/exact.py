"""Exact comparisons that tell -0.0 from +0.0 and compare NaN positions (tests' shared helper).

``np.testing.assert_array_equal`` treats -0.0 == +0.0 and NaN == NaN, so a
result with the wrong zero sign passes it. ``assert_identical`` is the check
for outputs documented as exact (copies, counts, maxima, CPU == GPU, align ==
resample, sharded == unsharded): same shape, the same NaN entries, the same
sign bits and the same values. NaN payloads are not compared (a NaN's bits
may legitimately differ between numpy and XLA conversions).
"""

from __future__ import annotations

import numpy as np


def _as_numpy(x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "biuf" or (x.dtype.kind == "f" and x.dtype.itemsize < 4):
        x = x.astype(np.float32)  # bfloat16 / float16: exact
    return x


def assert_identical(got, want, err_msg: str = "") -> None:
    """``got`` equals ``want`` exactly, signed zeros and NaN positions included."""
    got, want = _as_numpy(got), _as_numpy(want)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape} {err_msg}"
    if got.dtype.kind != "f" and want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=err_msg)
        return
    got, want = got.astype(np.float64), want.astype(np.float64)  # exact for float32 and below
    nan = np.isnan(got)
    np.testing.assert_array_equal(nan, np.isnan(want), err_msg="NaN entries " + err_msg)
    np.testing.assert_array_equal(got, want, err_msg=err_msg)
    np.testing.assert_array_equal(np.signbit(got) & ~nan, np.signbit(want) & ~nan,
                                  err_msg="signs (-0.0 vs +0.0) " + err_msg)
