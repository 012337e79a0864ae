"""``normalize`` / ``unnormalize`` with stream statistics, inside ``jit`` (docs/stats.md).

Modes (the conventions of LeRobot and openpi, their epsilons included):

| mode | normalize | range |
|---|---|---|
| ``"mean_std"`` | ``(x - mean) / (std + 1e-8)`` | zero mean, unit variance |
| ``"min_max"`` | ``2 (x - min) / (max - min + 1e-8) - 1`` | [-1, 1] |
| ``"quantile"`` | ``2 (x - q01) / (q99 - q01 + 1e-6) - 1`` | [-1, 1] between q01 and q99 (not clipped) |

``unnormalize`` is the exact algebraic inverse. Statistics broadcast over the
trailing feature axis, so ``sample_windows`` outputs ``[B, K, D]`` work as they
are (and LeRobot's image stats ``[C, 1, 1]`` on images ``[..., C, H, W]``). The
arithmetic is float32 (float64 for float64 inputs); the output has the dtype of ``x``
when it is floating point, float32 for integer or bool ``x`` (a
normalised value is not an integer).
"""

from __future__ import annotations

from typing import Mapping

import jax.numpy as jnp
import numpy as np

__all__ = ["MODES", "normalize", "unnormalize"]

#: mode -> (statistic names for the offset and scale, epsilon added to the scale).
MODES = {"mean_std": ("mean", "std", 1e-8), "min_max": ("min", "max", 1e-8),
         "quantile": ("q01", "q99", 1e-6)}


def _stat(stats, key: str):
    if isinstance(stats, Mapping):
        if key in stats:
            return stats[key]
    elif hasattr(stats, key):
        return getattr(stats, key)
    elif hasattr(stats, "quantiles") and key.startswith("q"):
        for q, v in stats.quantiles.items():
            if abs(q * 100 - float(key[1:])) < 1e-9:
                return v
    raise KeyError(f"stats has no {key!r}: mode needs it (compute it with quantiles=... or "
                   "choose another mode)")


def _broadcasts_onto(stat_shape, x_shape) -> bool:
    """The stats broadcast against x's trailing axes without changing x's shape, with one
    value per feature ([D] for x [..., D]) or per channel of an image ([C, 1, 1])."""
    stat_shape, x_shape = tuple(stat_shape), tuple(x_shape)
    if len(stat_shape) == 1 and (not x_shape or stat_shape[0] != x_shape[-1]):
        return False  # a [1] or wrong-width vector is not silently spread over D features
    try:
        return np.broadcast_shapes(stat_shape, x_shape) == x_shape
    except ValueError:
        return False


def _affine(x, stats, mode: str):
    """(offset, scale, shift, accumulation dtype): normalize is (x - offset) / scale - shift."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    lo_key, hi_key, eps = MODES[mode]
    acc = jnp.float64 if jnp.asarray(x).dtype == jnp.float64 else jnp.float32
    lo = jnp.asarray(_stat(stats, lo_key), acc)
    hi = jnp.asarray(_stat(stats, hi_key), acc)
    if lo.shape != hi.shape or not _broadcasts_onto(lo.shape, jnp.shape(x)):
        raise ValueError(f"stats {lo_key} {tuple(lo.shape)} / {hi_key} {tuple(hi.shape)} do not "
                         f"match the feature axis of x {tuple(jnp.shape(x))} (stats [D] for "
                         "x [..., D]; LeRobot's image stats [C, 1, 1] for x [..., C, H, W])")
    if mode == "mean_std":
        return lo, hi + eps, 0.0, acc
    return lo, (hi - lo + eps) / 2, 1.0, acc


def normalize(x, stats, mode: str = "mean_std"):
    """Normalises ``x [..., D]`` with ``stats`` (a ``StreamStats`` or a stats.json entry)."""
    offset, scale, shift, acc = _affine(x, stats, mode)
    x = jnp.asarray(x)
    return ((x.astype(acc) - offset) / scale - shift).astype(_out_dtype(x))


def unnormalize(y, stats, mode: str = "mean_std"):
    """The inverse of ``normalize``."""
    offset, scale, shift, acc = _affine(y, stats, mode)
    y = jnp.asarray(y)
    return ((y.astype(acc) + shift) * scale + offset).astype(_out_dtype(y))


def _out_dtype(x):
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
