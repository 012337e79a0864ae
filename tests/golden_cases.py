"""Golden cases: fixed inputs whose expected outputs live in tests/golden/*.npz.

The expected outputs come from the independent numpy references
(tests/reference*.py), generated once by ``python tests/golden_cases.py``.
A behaviour change then shows up as a golden-test failure and must be made
deliberately: regenerate, review the diff, commit the new npz.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

GOLDEN_DIR = Path(__file__).parent / "golden"


def resample_cases():
    """name -> (op name, inputs dict, op keyword params, reference function of the inputs)."""
    import reference
    from episodes import episodes
    cases = {}
    for method in ("linear", "nearest", "previous", "slerp"):
        for policy in ("clamp", "nan", "extrapolate"):
            if policy == "extrapolate" and method != "linear":
                continue
            rng = np.random.default_rng([7, len(method), len(policy)])  # fixed forever
            v, t, q, n = episodes(rng, 4, 17, 4 if method == "slerp" else 3, 23,
                                  quaternions=method == "slerp")
            inputs = dict(values=v, times=t, query_times=q, lengths=n)
            cases[f"resample_{method}_{policy}"] = (
                "resample", inputs, dict(method=method, out_of_range=policy),
                lambda i, m=method, p=policy: reference.resample(
                    i["values"], i["times"], i["query_times"], i["lengths"], m, p)[0])
    return cases


def all_cases():
    return {**resample_cases()}


def regenerate():
    GOLDEN_DIR.mkdir(exist_ok=True)
    for name, (_, inputs, _, ref) in all_cases().items():
        np.savez_compressed(GOLDEN_DIR / f"{name}.npz", expected=ref(inputs), **inputs)
        print("wrote", name)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    regenerate()
