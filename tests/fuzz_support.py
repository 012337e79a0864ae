"""Shared pieces of the hypothesis fuzz tests (streams/ and voxels/ test_*_fuzz.py).

Speed is what lets the long profile (HYPOTHESIS_PROFILE=long: 10,000 examples
per op, see conftest.py) run in minutes: every example is ONE call of a cached
jitted function, and the drawn shapes come from a few fixed buckets (ragged
sizes are expressed through ``lengths`` and garbage padding, not through new
shapes) while static options come from short lists. So each (bucket, options)
pair compiles once and every later example only dispatches. Examples run on
the default device: the GPU (CUDA kernels) where there is one, else the CPU.
"""

from __future__ import annotations

import atexit
import collections
import functools
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import settings

#: Absolute tolerance relative to the largest finite |reference| of an output dtype
#: (float32: also a float32 window sum of a few dozen samples).
TOL = {"float32": 1e-5, "bfloat16": 8e-3, "float16": 1e-3, "float64": 1e-12}

#: Non-finite and extreme entries sprinkled into values / features.
NON_FINITE = np.array([np.nan, np.inf, -np.inf])


#: Examples run per fuzz test in this process: printed to stderr at exit and, if
#: $ROBOCACHE_FUZZ_COUNTS names a file, kept there as JSON (rewritten every 50 examples
#: and at exit, so a time-boxed run that is killed still tells how far it got).
COUNTS: collections.Counter = collections.Counter()


def _save_counts():
    path = os.environ.get("ROBOCACHE_FUZZ_COUNTS")
    if path and COUNTS:
        with open(path + ".tmp", "w") as fh:
            json.dump(dict(COUNTS), fh)
        os.replace(path + ".tmp", path)


def counted(test):
    """Counts the examples a fuzz test runs (see COUNTS)."""
    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        COUNTS[test.__name__] += 1
        if COUNTS[test.__name__] % 50 == 0:
            _save_counts()
        return test(*args, **kwargs)
    return wrapper


@atexit.register
def _report_counts():
    if COUNTS:
        print(f"fuzz examples run: {json.dumps(dict(COUNTS))}", file=sys.stderr)
        _save_counts()


def examples(fraction: float) -> int:
    """A fraction of the active profile's examples (secondary fuzz tests of an op)."""
    return max(10, int(settings.default.max_examples * fraction))


@functools.lru_cache(maxsize=None)
def jitted(fn, **static):
    """``jax.jit(fn)`` with keyword options bound (cached: one wrapper per option set)."""
    return jax.jit(functools.partial(fn, **static))


def as_f64(x) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(np.float32).astype(np.float64) if x.dtype.itemsize < 4 else \
        x.astype(np.float64)


def assert_close(out, ref, err: str = "") -> None:
    """``out`` equals the float64 ``ref`` rounded to ``out``'s dtype: the same NaN and +-inf
    entries, finite ones within TOL[dtype] times the largest finite |ref| (at least 1)."""
    dtype = jnp.dtype(out.dtype)
    got = as_f64(out)
    want = as_f64(np.asarray(ref, np.float64).astype(dtype))  # inf where the dtype overflows
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg="NaN entries " + err)
    np.testing.assert_array_equal(np.where(np.isinf(got), got, 0),
                                  np.where(np.isinf(want), want, 0), err_msg="inf entries " + err)
    finite = np.isfinite(want)
    scale = max(float(np.abs(want[finite]).max(initial=0.0)), 1.0)
    tol = TOL[dtype.name] * scale
    np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=tol, err_msg=err)


def sprinkle(rng, x, fraction: float, specials=None, where=None) -> None:
    """Overwrites about ``fraction`` of the entries of float array ``x`` (in place; only
    where ``where`` is true, if given) with values drawn from ``specials`` (NaN, +-inf)."""
    if fraction <= 0 or x.size == 0:
        return
    specials = NON_FINITE if specials is None else specials
    hit = rng.random(x.shape) < fraction
    if where is not None:
        hit &= where
    x[hit] = rng.choice(np.asarray(specials), int(hit.sum())).astype(x.dtype)
