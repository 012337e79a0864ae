"""Stream statistics (count, mean, std, min, max, q01, q99) on the device vs numpy on the host.

The issue's goal: over 10 M samples x D = 32, >= 100x what a user runs today,
numpy on the host (LeRobot's ``get_feature_stats`` plus ``np.quantile`` for
openpi's q01 / q99). Ours runs as one jitted program (three passes over the
data: moments, coarse histogram, fine histogram); there is no CUDA kernel, so
the jnp row times the same program.
"""

from __future__ import annotations

import functools

import numpy as np

from harness import Case
from jax_robocache.episodes.stats import QUANTILES, device_stats


def make_inputs(rng, N, D):
    """Joint-state-like features: offsets and scales that differ per feature; 3% masked."""
    scale = rng.uniform(0.01, 10.0, D).astype(np.float32)
    offset = rng.uniform(-100.0, 100.0, D).astype(np.float32)
    values = rng.standard_normal((N, D), np.float32) * scale + offset
    valid = rng.random(N) > 0.03
    return values, valid


def bytes_moved(operands):
    values, valid = operands
    return values.nbytes + valid.nbytes


def numpy_stats(values, valid):
    """What users run: masked copy, then min / max / mean / std and np.quantile per feature."""
    x = values[valid]
    return (np.quantile(x, QUANTILES[0], axis=0), np.min(x, 0), np.max(x, 0), np.mean(x, 0),
            np.std(x, 0), np.quantile(x, QUANTILES[1], axis=0))


def ours(values, valid):
    moments, quantiles = device_stats(values, valid)
    return (quantiles[QUANTILES[0]], moments.min, moments.max, moments.mean, moments.m2,
            quantiles[QUANTILES[1]])


def case(name, N, D, goal=None):
    return Case(op="stats", name=name, params=dict(N=N, D=D),
                make_inputs=functools.partial(make_inputs, N=N, D=D), fn=ours,
                bytes_moved=bytes_moved, feed=1, ffi_target="", numpy_fn=numpy_stats,
                tolerance=1e-4, goal=goal)


def cases(suite: str) -> list[Case]:
    if suite == "smoke":
        return [case("smoke_tiny", 512, 2)]
    quick = [case("n10m_d32", 10_000_000, 32, goal=("vs_numpy_min", 100.0))]
    if suite == "quick":
        return quick
    return quick + [case("n1m_d32", 1_000_000, 32), case("n10m_d8", 10_000_000, 8)]
