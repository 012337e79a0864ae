"""jax.numpy pieces of the ``voxelize`` twin: per-cloud voxel reductions.

Each function handles one cloud: ``seg [N]`` int32 holds the x-major voxel
id of every point, or ``V`` (the number of voxels) for a dropped point, so
that every scatter uses ``mode="drop"`` and dropped points vanish.

``max`` is defined through an order-preserving uint32 key of the
canonicalised float value (``-0.0`` becomes ``+0.0`` and every NaN the quiet
NaN, which sorts above ``+inf``), exactly as the CUDA kernel does: the
maximum is then a deterministic integer maximum, NaN-propagating, and the
gradient flows to the lowest point index that attains it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

# Float bit patterns: (unsigned type, sign bit, +inf, the quiet NaN) per width.
_BITS = {2: (jnp.uint16, 0x8000, 0x7F80, 0x7FC0), 4: (jnp.uint32, 0x80000000, 0x7F800000,
                                                       0x7FC00000)}


def _canonical_bits(x):
    """Bits of canonical(x), decided on the bits: XLA's CPU backend compares
    denormals as zero, the CUDA kernels do not."""
    utype, sign, inf, qnan = _BITS[jnp.dtype(x.dtype).itemsize]
    bits = lax.bitcast_convert_type(x, utype)
    magnitude = bits & utype(sign - 1)
    bits = jnp.where(magnitude == 0, utype(0), bits)  # -0.0 -> +0.0
    return jnp.where(magnitude > utype(inf), utype(qnan), bits)  # any NaN -> the quiet NaN


@jax.custom_jvp
def canonical(x):
    """``x`` (float32 or bfloat16) with ``-0.0`` -> ``+0.0`` and every NaN -> the quiet NaN;
    derivative 1."""
    return lax.bitcast_convert_type(_canonical_bits(x), x.dtype)


@canonical.defjvp
def _canonical_jvp(primals, tangents):
    return canonical(primals[0]), tangents[0]


def max_key(x):
    """Order-preserving uint32 key of canonical(x), never 0 (float32 or bfloat16 x).

    bfloat16 bits are the top half of the float32 bits of the same value, so
    both dtypes share the float32 key order; all in integers (no flushing).
    """
    bits = _canonical_bits(x).astype(jnp.uint32)
    if jnp.dtype(x.dtype).itemsize == 2:
        bits = bits << 16
    sign = jnp.uint32(0x80000000)
    return jnp.where((bits & sign) != 0, ~bits, bits | sign)


def count(seg, V: int):
    """Points per voxel, int32 [V]."""
    return jnp.zeros((V,), jnp.int32).at[seg].add(1, mode="drop")


def occupancy(seg, V: int):
    """1.0 where a voxel holds a point, else 0.0, float32 [V]."""
    return jnp.zeros((V,), jnp.float32).at[seg].set(1.0, mode="drop")


def feature_sum(seg, features, V: int):
    """Per-voxel sum of features [N, C], accumulated in float32 -> float32 [V, C]."""
    C = features.shape[-1]
    return jnp.zeros((V, C), jnp.float32).at[seg].add(features.astype(jnp.float32),
                                                      mode="drop")


def feature_mean(seg, features, V: int):
    """Per-voxel mean (float32 sum / float32 count; 0 for empty voxels) -> float32 [V, C]."""
    n = jnp.maximum(count(seg, V), 1).astype(jnp.float32)
    return feature_sum(seg, features, V) / n[:, None]


def feature_max(seg, features, V: int):
    """Per-voxel, per-channel maximum [V, C] in the features dtype (0 for empty voxels).

    The value is gathered from the winning point (the lowest index whose key
    equals the voxel's largest key), so the gradient reaches that point only.
    """
    N, C = features.shape
    if N == 0:
        return jnp.zeros((V, C), features.dtype)
    keys = max_key(features)
    kmax = jnp.zeros((V, C), jnp.uint32).at[seg].max(keys, mode="drop")
    kept = (seg < V)[:, None]
    attains = kept & (keys == kmax[jnp.minimum(seg, V - 1)])
    index = jnp.arange(N, dtype=jnp.int32)[:, None]
    candidate = jnp.where(attains, index, N)
    winner = jnp.full((V, C), N, jnp.int32).at[seg].min(candidate, mode="drop")
    gathered = jnp.take_along_axis(features, jnp.minimum(winner, N - 1), axis=0)
    return jnp.where(winner < N, canonical(gathered), jnp.zeros_like(gathered))
