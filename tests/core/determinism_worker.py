"""Computes every op twice on fixed inputs and saves the outputs: run by test_determinism.py.

Usage: python determinism_worker.py PLATFORM SEED OUT.npz

Inputs are the ``large`` cases of the ops' catalogues (``CASES`` below), drawn
from ``SEED`` (the same in every process): many points in each voxel and many
samples in each window, where an order-dependent float reduction would show.
For each case the npz holds every output leaf of the first call as
``<case>/<leaf>`` (``<case>`` for a single array) and of a second call with
``@repeat`` appended. Prints the backend each op lowered to.
"""

from __future__ import annotations

import sys

import jax
import numpy as np

from golden_cases import named_outputs

from jax_robocache._core.primitive import REGISTRY
from jax_robocache.streams import align_cases, resample_cases
from jax_robocache.voxels import points_to_voxels_cases, voxelize_cases

#: op -> (catalogue, the cases that cover every method / mode / policy, overrides)
CASES = {
    "resample": (resample_cases, ("linear_nan", "nearest_nan", "previous_nan", "slerp_nan"),
                 dict(return_valid=True)),
    "align": (align_cases, ("methods_clamp", "shared_clock_concatenated"), {}),
    "voxelize": (voxelize_cases, voxelize_cases.MODES, {}),
    "points_to_voxels": (points_to_voxels_cases, ("uniform", "overflow"), {}),
}


def cases(rng):
    """name -> Call."""
    return {f"{op}_{name}": catalogue.CASES[name].make(rng, "large", **overrides)
            for op, (catalogue, names, overrides) in CASES.items() for name in names}


def main(platform: str, seed: int, path: str) -> None:
    device = jax.devices(platform)[0]
    results = {}
    with jax.default_device(device):
        for name, call in cases(np.random.default_rng(seed)).items():
            fn, args = call.positional()
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
