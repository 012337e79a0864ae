"""Computes every op twice on fixed inputs and saves the outputs: run by test_determinism.py.

Usage: python determinism_worker.py PLATFORM SEED OUT.npz

Inputs come from ``SEED`` (the same in every process). For each case the npz
holds every output leaf of the first call as ``<case>/<leaf>`` (``<case>`` for
a single array) and of a second call with ``@repeat`` appended. Sizes put many points in each voxel and many
samples in each window, where an order-dependent float reduction would show.
Prints the backend each op lowered to.
"""

from __future__ import annotations

import sys

import jax
import numpy as np

from episodes import episodes
from golden_cases import named_outputs
from test_align import make_stream
from test_points_to_voxels import RANGE as P2V_RANGE, SIZE as P2V_SIZE, make_points
from test_voxelize import RANGE as VOX_RANGE, VOXEL, clouds

import jax_robocache as rc
from jax_robocache._core.primitive import REGISTRY


def cases(rng):
    """name -> (function of the arrays, arrays)."""
    out = {}
    v, t, q, n = episodes(rng, 8, 300, 6, 100)
    qv, qt, qq, qn = episodes(rng, 8, 300, 4, 100, quaternions=True)
    for method in ("linear", "nearest", "previous", "slerp"):
        args = (qv, qt, qq, qn) if method == "slerp" else (v, t, q, n)
        out[f"resample_{method}"] = (lambda v, t, q, n, m=method: rc.resample(
            v, t, q, lengths=n, method=m, out_of_range="nan", return_valid=True), args)

    metas = [dict(method="linear", offset=0.01), dict(method="nearest", tolerance=0.01),
             dict(method="previous", tolerance=0.02), dict(method="slerp"),
             dict(method="window_mean", window=0.05, offset=-0.01)]
    arrays = []
    for k, meta in enumerate(metas):
        arrays += make_stream(rng, 8, 400, 4 if k == 3 else 5, quaternions=k == 3)
    clock = np.sort(rng.uniform(-0.1, 1.1, (8, 64)), axis=-1).astype(np.float32)

    def align_all(clock, *a):
        streams = {f"{m['method']}": rc.Stream(*a[3 * k:3 * k + 3], **m)
                   for k, m in enumerate(metas)}
        return rc.align(streams, clock, out_of_range="clamp", concatenate=True)

    out["align"] = (align_all, (clock, *arrays))

    points, features, lengths = clouds(rng, 3, 20000, 4)
    for mode in ("count", "occupancy", "sum", "mean", "max"):
        out[f"voxelize_{mode}"] = (lambda p, f, n, m=mode: rc.voxelize(
            p, f, voxel_size=VOXEL, point_range=VOX_RANGE, mode=m, lengths=n),
            (points, features, lengths))

    p2v_points = make_points(rng, (3,), 20000, clustered=True)
    p2v_features = rng.normal(size=(3, 20000, 2)).astype(np.float32)
    out["points_to_voxels"] = (lambda p, f, n: rc.points_to_voxels(
        p, f, voxel_size=P2V_SIZE, point_range=P2V_RANGE, max_voxels=100,
        max_points_per_voxel=32, lengths=n), (p2v_points, p2v_features, lengths))
    return out


def main(platform: str, seed: int, path: str) -> None:
    device = jax.devices(platform)[0]
    results = {}
    with jax.default_device(device):
        for name, (fn, args) in cases(np.random.default_rng(seed)).items():
            jitted = jax.jit(fn)
            args = [jax.device_put(a, device) for a in args]
            for suffix in ("", "@repeat"):
                for leaf, value in named_outputs(jitted(*args)).items():
                    results[f"{name}/{leaf}{suffix}" if leaf else f"{name}{suffix}"] = (
                        np.asarray(value))
    np.savez(path, **results)
    print("backends:", {op: REGISTRY[op].backend(platform) for op in sorted(REGISTRY)})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
