"""``self_test()``: a fast check of every op on the available backends.

Each op is run on small random inputs on every available platform (CPU
always, GPU when present) and compared with an independent numpy
computation; with a GPU, CPU and GPU results are also compared with each
other. ``python -m jax_robocache.self_test`` prints the report and exits
non-zero on any failure.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Callable

import jax
import numpy as np

from ._info import info


@dataclasses.dataclass
class CheckResult:
    op: str
    platform: str
    backend: str
    ok: bool
    detail: str
    seconds: float


@dataclasses.dataclass
class Report:
    results: list[CheckResult]
    info: dict

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def __str__(self) -> str:
        lines = [f"jax_robocache {self.info['version']} on jax {self.info['jax']} "
                 f"(default backend {self.info['default_backend']}, CUDA kernels "
                 f"{'registered' if self.info['cuda_kernels_registered'] else 'not registered'})"]
        for r in self.results:
            lines.append(f"  {'PASS' if r.ok else 'FAIL'}  {r.op:18s} {r.platform:4s} "
                         f"{r.backend:9s} {r.seconds * 1e3:7.1f} ms  {r.detail}")
        lines.append("all checks passed" if self.ok else "SOME CHECKS FAILED")
        return "\n".join(lines)


#: op name -> check(rng, platform) returning (numpy output, numpy expected, tolerance)
CHECKS: dict[str, Callable] = {}


def register_check(name: str):
    def wrap(fn):
        CHECKS[name] = fn
        return fn
    return wrap


@register_check("resample")
def _check_resample(rng):
    from .resample import resample
    B, S, D, T = 3, 40, 5, 25
    times = np.cumsum(rng.uniform(0.01, 0.02, (B, S)), axis=1).astype(np.float32)
    values = rng.normal(size=(B, S, D)).astype(np.float32)
    queries = rng.uniform(times[:, :1], times[:, -1:], (B, T)).astype(np.float32)
    out = np.asarray(resample(values, times, queries))
    expected = np.stack([np.stack([np.interp(queries[b], times[b], values[b, :, d])
                                   for d in range(D)], -1) for b in range(B)])
    return out, expected, 1e-5


def _platforms() -> list[str]:
    platforms = ["cpu"]
    try:
        if jax.devices("gpu"):
            platforms.append("gpu")
    except RuntimeError:
        pass
    return platforms


def self_test(seed: int | None = None) -> Report:
    """Runs every registered check on every available platform; returns a ``Report``."""
    from ._primitive import REGISTRY
    rng_seed = np.random.SeedSequence(seed).entropy
    results, outputs = [], {}
    for name, check in sorted(CHECKS.items()):
        for platform in _platforms():
            rng = np.random.default_rng(rng_seed)  # same inputs on every platform
            backend = REGISTRY[name].backend(platform) if name in REGISTRY else "jnp"
            start = time.perf_counter()
            try:
                with jax.default_device(jax.devices(platform)[0]):
                    out, expected, tol = check(rng)
                err = float(np.max(np.abs(out.astype(np.float64) - expected), initial=0.0))
                ok = bool(np.isfinite(err) and err <= tol)
                detail = f"max |error| {err:.2e} (tolerance {tol:.0e})"
                outputs[(name, platform)] = out
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            results.append(CheckResult(name, platform, backend, ok, detail,
                                       time.perf_counter() - start))
        if (name, "cpu") in outputs and (name, "gpu") in outputs:
            diff = float(np.max(np.abs(outputs[(name, "cpu")].astype(np.float64)
                                       - outputs[(name, "gpu")]), initial=0.0))
            results.append(CheckResult(name, "both", "cpu-vs-gpu", diff <= 1e-5,
                                       f"max |cpu - gpu| {diff:.2e}", 0.0))
    return Report(results, info())


def main() -> int:
    report = self_test()
    print(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
