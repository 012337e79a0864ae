"""resample cases, with the PyTorch and numpy code a user would write for linear/previous.

Inputs: the catalogue's ``inside`` case (jittered clocks over 5 s, sorted
queries inside them, N(0,1) values). Issue #2's targets: the training batch
B=256, S=500, D=32, T=50 (float32 and bfloat16), >= 10x over jnp; and the
large 256 x 2000 x 256 -> 1000 bfloat16 at >= 80% of the copy bandwidth on the
bytes that must move (value rows actually referenced + queries + output).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from harness import Case
from jax_robocache import resample
from jax_robocache.streams.resample_cases import CASES


def bytes_moved(operands):
    """Fewest bytes: referenced value rows (both neighbours), queries, output."""
    values, times, queries = operands
    B, S, D = values.shape
    T = queries.shape[1]
    item = values.dtype.itemsize
    rows = 0
    for b in range(B):
        i = np.clip(np.searchsorted(times[b], queries[b], side="right") - 1, 0, S - 1)
        rows += len(np.union1d(i, np.minimum(i + 1, S - 1)))
    return rows * D * item + queries.size * 4 + B * T * D * item


# -- what a user would write ---------------------------------------------------
def torch_resample(values, times, queries, *, method):
    """torch.searchsorted + gather (+ lerp); queries outside the samples hold the edge."""
    import torch
    S, D = values.shape[1], values.shape[2]
    i = torch.searchsorted(times, queries, right=True) - 1
    if method == "previous":
        return values.gather(1, i.clamp(0, S - 1).unsqueeze(-1).expand(-1, -1, D))
    i = i.clamp(0, S - 2)
    t0, t1 = times.gather(1, i), times.gather(1, i + 1)
    w = ((queries - t0) / (t1 - t0)).clamp(0, 1).unsqueeze(-1).to(values.dtype)
    idx = i.unsqueeze(-1).expand(-1, -1, D)
    return torch.lerp(values.gather(1, idx), values.gather(1, idx + 1), w)


def numpy_resample(values, times, queries, *, method):
    """np.searchsorted per episode + take_along_axis (+ lerp), in float32."""
    S = values.shape[1]
    i = np.stack([np.searchsorted(t, q, side="right") for t, q in zip(times, queries)]) - 1
    if method == "previous":
        return np.take_along_axis(values, np.clip(i, 0, S - 1)[..., None], 1)
    i = np.clip(i, 0, S - 2)
    t0, t1 = np.take_along_axis(times, i, 1), np.take_along_axis(times, i + 1, 1)
    w = np.clip((queries - t0) / (t1 - t0), 0, 1)[..., None]
    v0 = np.take_along_axis(values, i[..., None], 1)
    v1 = np.take_along_axis(values, i[..., None] + 1, 1)
    return v0 + w * (v1 - v0)


def case(name, B, S, D, T, dtype="float32", method="linear", goal=None):
    params = dict(B=B, S=S, D=D, T=T, dtype=dtype, method=method)
    return Case(
        op="resample", name=name, params=params,
        make_inputs=lambda rng: tuple(CASES["inside"].make(
            rng, B=B, S=S, D=D, T=T, value_dtype=jnp.dtype(dtype)).arrays.values()),
        fn=lambda v, t, q: resample(v, t, q, method=method),
        bytes_moved=bytes_moved, feed=2,
        torch_fn=functools.partial(torch_resample, method=method),
        numpy_fn=functools.partial(numpy_resample, method=method),
        tolerance=5e-2 if dtype != "float32" else 1e-4, goal=goal)


def cases(suite: str) -> list[Case]:
    if suite == "smoke":
        return [case("smoke_tiny", 4, 32, 4, 8)]
    quick = [case("train_f32", 256, 500, 32, 50, goal=("vs_jnp_min", 10.0)),
             case("train_bf16", 256, 500, 32, 50, "bfloat16", goal=("vs_jnp_min", 10.0)),
             case("large_bf16", 256, 2000, 256, 1000, "bfloat16",
                  goal=("copy_fraction_min", 0.8))]
    if suite == "quick":
        return quick
    sweep = [case(f"b{B}_f32", B, 500, 32, 50) for B in (32, 1024, 4096)]
    # The shapes earlier GPU preprocessing libraries published figures for, so users can compare.
    published = [case(f"ref_{B}x{S}x{D}_{T}_{dt}", B, S, D, T, dt)
                 for B, S, D, T in ((8, 250, 128, 125), (32, 500, 256, 250), (64, 1000, 512, 500))
                 for dt in ("float32", "bfloat16")]
    return quick + sweep + published + [case("train_previous_f32", 256, 500, 32, 50, method="previous"),
                            case("long_f32", 64, 5000, 14, 1000)]
