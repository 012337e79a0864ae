"""align cases: three sensor streams onto one clock in one launch, vs what one would write.

Issue #3's targets: B=256 episodes of 5 s with vision 150 x 512 (bfloat16,
30 Hz), proprio 2500 x 14 (float32, 500 Hz) and force 5000 x 6 (float32,
1 kHz), linearly interpolated onto 250 targets (50 Hz) and onto a training
clock of T=50 (10 Hz), concatenated to [B, T, 532] float32
(``fuse_multimodal``). Goals (issue 19, against the copy bandwidth of the same run on the
bytes that must move): >= 80% at T=250, >= 70% at T=50. Also: a mixed
case (linear vision with a tolerance, previous-sample proprio, 20 ms
window_mean force; ``align`` returning a pytree) and, in ``full``, the same
fusion written as three ``resample`` calls + a concatenation (``unfused``:
its ``ours`` row runs our resample kernels, its ``jnp`` row is the XLA code
one would write without ``align``). Baselines: three torch / numpy
searchsorted + gather resamples (``suites/resample.py``) + concatenation.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from harness import Case
from jax_robocache import Stream, align, fuse_multimodal, resample
from jax_robocache.streams.align_cases import clean_streams

from .resample import numpy_resample, torch_resample

#: Samples per 5 s episode, features, dtype; in fuse_multimodal's (= concatenation) order.
STREAMS = {"vision": (150, 512, "bfloat16"), "proprio": (2500, 14, "float32"),
           "force": (5000, 6, "float32")}
TINY_STREAMS = {"vision": (15, 8, "bfloat16"), "proprio": (50, 4, "float32"),
                "force": (100, 3, "float32")}
ORDER = tuple(STREAMS)
EPISODE_S = 5.0
WINDOW_S = 0.02  # the mixed case's force window


def bytes_moved(operands, *, flags=True, out_bytes=4):
    """Fewest bytes: referenced value rows (both neighbours), targets, the [B, T, sum D]
    output (``out_bytes`` an element: float32, or bfloat16 with ``out_dtype``) and, with
    ``flags`` (align writes them), valid + age per stream (5 bytes a target)."""
    *pairs, q = operands
    B, T = q.shape
    total, width = q.size * 4, 0
    for values, times in zip(pairs[0::2], pairs[1::2]):
        S, D = values.shape[1:]
        rows = 0
        for b in range(B):
            i = np.clip(np.searchsorted(times[b], q[b], side="right") - 1, 0, S - 1)
            rows += len(np.union1d(i, np.minimum(i + 1, S - 1)))
        total += rows * D * values.dtype.itemsize + (B * T * 5 if flags else 0)
        width += D
    return total + B * T * width * out_bytes


# -- ours ----------------------------------------------------------------------
def fuse(v, vt, p, pt, f, ft, q):
    return fuse_multimodal(v, vt, p, pt, f, ft, q)


def fuse_bf16(v, vt, p, pt, f, ft, q):
    """fuse with ``out_dtype=bfloat16``: half the output bytes a training step reads."""
    return fuse_multimodal(v, vt, p, pt, f, ft, q, out_dtype=jnp.bfloat16)


def mixed(v, vt, p, pt, f, ft, q):
    """Three methods in one launch; a pytree out (concatenated values, all-valid mask)."""
    streams = {"vision": Stream(v, vt, tolerance=0.1),
               "proprio": Stream(p, pt, method="previous", tolerance=0.01),
               "force": Stream(f, ft, method="window_mean", window=WINDOW_S)}
    out = align(streams, q, concatenate=ORDER)
    return out.concatenated(), out.all_valid()


def unfused(v, vt, p, pt, f, ft, q):
    """What one writes without align: three resamples and a concatenation."""
    parts = [resample(x, t, q).astype(jnp.float32) for x, t in ((v, vt), (p, pt), (f, ft))]
    return jnp.concatenate(parts, axis=-1)


# -- what a user would write ---------------------------------------------------
def torch_window_mean(values, times, queries, window):
    """Mean of the samples with q - w < t <= q (prefix sums); an empty window: previous."""
    import torch
    B, S, D = values.shape
    hi = torch.searchsorted(times, queries, right=True)
    lo = torch.searchsorted(times, queries - window, right=True)
    sums = torch.cat([values.new_zeros(B, 1, D), values.cumsum(1)], 1)
    at = lambda i: sums.gather(1, i.unsqueeze(-1).expand(-1, -1, D))  # noqa: E731
    n = (hi - lo).unsqueeze(-1)
    prev = values.gather(1, (hi - 1).clamp(0, S - 1).unsqueeze(-1).expand(-1, -1, D))
    return torch.where(n > 0, (at(hi) - at(lo)) / n.clamp(min=1), prev)


def numpy_window_mean(values, times, queries, window):
    """np.searchsorted per episode + prefix sums, in float32; an empty window: previous."""
    S = values.shape[1]
    hi = np.stack([np.searchsorted(t, q, side="right") for t, q in zip(times, queries)])
    lo = np.stack([np.searchsorted(t, q - np.float32(window), side="right")
                   for t, q in zip(times, queries)])
    sums = np.concatenate([np.zeros_like(values[:, :1]), np.cumsum(values, axis=1)], axis=1)
    n = (hi - lo)[..., None]
    mean = (np.take_along_axis(sums, hi[..., None], 1)
            - np.take_along_axis(sums, lo[..., None], 1)) / np.maximum(n, 1)
    prev = np.take_along_axis(values, np.clip(hi - 1, 0, S - 1)[..., None], 1)
    return np.where(n > 0, mean, prev)


def torch_align(v, vt, p, pt, f, ft, q, *, kind):
    import torch
    if kind == "mixed":
        parts = [torch_resample(v, vt, q, method="linear"),
                 torch_resample(p, pt, q, method="previous"),
                 torch_window_mean(f, ft, q, WINDOW_S)]
    else:
        parts = [torch_resample(x, t, q, method="linear") for x, t in ((v, vt), (p, pt), (f, ft))]
    return torch.cat([x.float() for x in parts], dim=-1)


def numpy_align(v, vt, p, pt, f, ft, q, *, kind):
    if kind == "mixed":
        parts = [numpy_resample(v, vt, q, method="linear"),
                 numpy_resample(p, pt, q, method="previous"),
                 numpy_window_mean(f, ft, q, WINDOW_S)]
    else:
        parts = [numpy_resample(x, t, q, method="linear") for x, t in ((v, vt), (p, pt), (f, ft))]
    return np.concatenate(parts, axis=-1)


OURS = {"fuse": fuse, "fuse_bf16": fuse_bf16, "mixed": mixed, "unfused": unfused}


#: Issue 19's goals: the fraction of the run's copy bandwidth on the bytes that must move.
COPY_GOALS = {250: ("copy_fraction_min", 0.80), 50: ("copy_fraction_min", 0.70)}


def case(name, B, T, kind="fuse", streams=STREAMS, with_goal=True):
    params = dict(B=B, T=T, kind=kind,
                  streams=" ".join(f"{S}x{D}{'bf16' if d == 'bfloat16' else ''}"
                                   for S, D, d in streams.values()))
    return Case(
        op="align", name=name, params=params,
        make_inputs=functools.partial(clean_streams, B=B, T=T, duration=EPISODE_S, streams={
            n: (S, D, jnp.dtype(d)) for n, (S, D, d) in streams.items()}),
        fn=OURS[kind], bytes_moved=functools.partial(bytes_moved, flags=kind != "unfused",
                                                     out_bytes=2 if kind == "fuse_bf16" else 4),
        feed=6,  # the targets carry the dependency
        ffi_target="robocache_resample" if kind == "unfused" else None,
        torch_fn=functools.partial(torch_align, kind="mixed" if kind == "mixed" else "fuse"),
        numpy_fn=functools.partial(numpy_align, kind="mixed" if kind == "mixed" else "fuse"),
        tolerance=5e-2,  # bfloat16 vision (torch interpolates in bfloat16, numpy in float32)
        goal=COPY_GOALS.get(T) if kind == "fuse" and with_goal else None)


def cases(suite: str) -> list[Case]:
    if suite == "smoke":
        return [case("smoke_tiny", 2, 10, streams=TINY_STREAMS, with_goal=False)]
    quick = [case("fuse_T250", 256, 250), case("fuse_T250_bf16_out", 256, 250, "fuse_bf16")]
    if suite == "quick":
        return quick
    return quick + [case("fuse_T50", 256, 50), case("mixed_T250", 256, 250, "mixed"),
                    case("unfused_T250", 256, 250, "unfused")]
