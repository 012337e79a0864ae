"""UnresolvedSpan (csrc/streams/interp_plan.cuh), the resolution rule the resample and align
kernels apply per episode, equals the independent numpy reference (tests/references) and the
twins' rule (streams/timestamps.py) on float32 and float64 episodes: both sides of the
boundary over nine decades, negative, zero, NaN and infinite edge times, 0 to 3e7 samples.

check_unresolved.cu evaluates the C++ rule on the host. One compile of a few seconds: needs
nvcc, not a GPU (the GPU tests in tests/streams/test_epoch_timestamps.py run the kernels).
"""

import jax.numpy as jnp
import numpy as np
from nvcc_build import build, run

from references import resample as reference
from jax_robocache.streams.timestamps import unresolved_spans

EPOCH = 1.7e9


def _cases(rng):
    """(dtype, n, t0, last) episodes."""
    cases = []
    for dtype, eps, decades in ((np.float32, 2.0 ** -23, 9), (np.float64, 2.0 ** -52, 15)):
        for _ in range(3000):  # around the boundary: mean spacing ~ 4 eps |t|
            n = int(rng.integers(2, 5000))
            mag = 10.0 ** rng.uniform(-1, decades) * rng.choice([-1, 1])
            gap = abs(mag) * eps * 4 * rng.uniform(0.5, 1.5)
            cases.append((dtype, n, mag, mag + gap * (n - 1)))
        for _ in range(500):  # spacings around the 1 us floor, near zero
            n = int(rng.integers(2, 100))
            t0 = rng.uniform(0.5, 5.0)
            cases.append((dtype, n, t0, t0 + 1e-6 * (n - 1) * rng.uniform(0.0, 2.0)))
        inf, nan = np.inf, np.nan
        for t0, last in ((0.0, 0.0), (-0.0, 0.0), (1000.0, 1000.0), (0.5, 0.5), (EPOCH, EPOCH + 300),
                         (EPOCH, EPOCH + 1000), (nan, 1.0), (1.0, nan), (-inf, 1.0), (1.0, inf),
                         (inf, inf), (-inf, -inf), (-inf, inf), (nan, nan), (-EPOCH, -EPOCH + 1)):
            for n in (0, 1, 2, 3, 100, 2 ** 24 - 1, 2 ** 24 + 1, 2 ** 24 + 3, 30_000_000):
                cases.append((dtype, n, t0, last))
    return [(d, n, float(d(a)), float(d(b))) for d, n, a, b in cases]


def _reference(dtype, n, t0, last):
    t = np.empty(max(n, 2), dtype)  # the reference reads t[0] and t[n - 1]
    t[0], t[max(n, 2) - 1] = t0, last
    return reference.unresolved(t, n)


def test_kernel_rule_equals_reference_and_twin(tmp_path, rng):
    binary = build("check_unresolved.cu", tmp_path)
    cases = _cases(rng)
    lines = [f"{'f' if d == np.float32 else 'd'} {n} {a.hex()} {b.hex()}" for d, n, a, b in cases]
    (tmp_path / "cases.txt").write_text("\n".join(lines) + "\n")
    out = run(binary, str(tmp_path / "cases.txt"))
    kernel = np.array(out.split(), int).astype(bool)
    assert kernel.shape == (len(cases),)
    ref = np.array([_reference(*c) for c in cases])
    assert 500 < ref.sum() < len(cases) - 500  # both sides of the boundary, in both dtypes
    bad = np.flatnonzero(kernel != ref)
    assert bad.size == 0, [(cases[i], kernel[i], ref[i]) for i in bad[:10]]
    for dtype in (np.float32, np.float64):  # the twins' rule on the same episodes (numpy)
        pick = [i for i, c in enumerate(cases) if c[0] == dtype]
        t0 = np.array([cases[i][2] for i in pick], dtype)
        last = np.array([cases[i][3] for i in pick], dtype)
        n = np.array([cases[i][1] for i in pick], np.int64)
        np.testing.assert_array_equal(unresolved_spans(t0, last, n, np), ref[pick])
    f32 = [i for i, c in enumerate(cases) if c[0] == np.float32 and c[1] < 2 ** 24]
    twin = unresolved_spans(jnp.asarray([cases[i][2] for i in f32], jnp.float32),
                            jnp.asarray([cases[i][3] for i in f32], jnp.float32),
                            jnp.asarray([cases[i][1] for i in f32], jnp.int32), jnp)
    np.testing.assert_array_equal(np.asarray(twin), ref[f32])
