"""Runs every op once per shape on the default device: the workload of sanitize.sh and soak.py.

``workloads()`` yields (name, jitted function, arguments) for a spread of shapes
including edge sizes; new ops add their entries here.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import jax_robocache as rc


def _episodes(rng, B, S, D, T, dtype=np.float32):
    times = np.cumsum(rng.uniform(0.001, 0.02, (B, S)), axis=1).astype(np.float32)
    values = jnp.asarray(rng.normal(size=(B, S, D)).astype(np.float32)).astype(dtype)
    queries = rng.uniform(-0.1, times[:, -1:].max() + 0.1, (B, T)).astype(np.float32)
    lengths = rng.integers(0, S + 1, B).astype(np.int32)
    return values, times, queries, lengths


def workloads(rng):
    shapes = [(1, 1, 1, 1), (3, 17, 5, 9), (16, 500, 32, 50), (4, 2000, 256, 300),
              (2, 9000, 3, 64), (5, 40, 4, 0)]
    for B, S, D, T in shapes:
        for dtype in (np.float32, jnp.bfloat16):
            v, t, q, n = _episodes(rng, B, S, D, T, dtype)
            for method in ("linear", "nearest", "previous") + (("slerp",) if D == 4 else ()):
                for policy in ("clamp", "nan") + (("extrapolate",) if method == "linear" else ()):
                    fn = jax.jit(lambda v, t, q, n, m=method, p=policy: rc.resample(
                        v, t, q, lengths=n, method=m, out_of_range=p, return_valid=True))
                    yield (f"resample/{method}/{policy}/{B}x{S}x{D}->{T}/{np.dtype(dtype).name}",
                           fn, (v, t, q, n))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    count = 0
    for name, fn, operands in workloads(rng):
        for _ in range(args.repeats):
            jax.block_until_ready(fn(*operands))
            count += 1
    print(f"ran {count} op calls on {jax.devices()[0].device_kind}")


if __name__ == "__main__":
    main()
