"""Baselines outside jax, timed in the same run: PyTorch (what a user would write) and numpy.

* torch on a GPU: CUDA events around ``calls`` back-to-back calls (one loop of
  about ``target_s``), per-call time = elapsed / calls; the inputs rotate over
  the same number of copies as our in-graph loop, so neither side is timed on
  an L2-resident input the other streams from memory. Launch overhead counts
  where it dominates (that is what a user's eager loop pays).
* torch without a GPU, and numpy: one host-timed call per sample, as many as
  fit in ``host_budget_s`` per input draw (at least two).
* Operands come from the case's numpy inputs: bf16 becomes torch.bfloat16 on
  the device, and float32 for numpy (numpy has no fast half-precision math;
  float16 is upcast too); the conversion is not timed.
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np


class Result(NamedTuple):
    samples: np.ndarray   # seconds per call
    output: Any           # the first input draw's output (to check against ours)
    timing: str           # "cuda_events" or "host_call"
    backend: str          # "torch-cuda", "torch-cpu" or "numpy-cpu"


def torch_module():
    """torch, or None when it is not importable (the smoke mode needs no torch)."""
    try:
        import torch
    except Exception:  # noqa: BLE001  (ImportError, or a broken CUDA install)
        return None
    return torch


def _is_half(a: np.ndarray) -> bool:
    return a.dtype.name in ("bfloat16", "float16")


def numpy_operand(x):
    a = np.asarray(x)
    return a.astype(np.float32) if _is_half(a) else a


def torch_operand(torch, x, device: str):
    a = np.asarray(x)
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.astype(np.float32)).to(device=device, dtype=torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(a)).to(device)


def _host_samples(fn: Callable, sets: Sequence, budget_s: float, repeats: int) -> np.ndarray:
    """Host-timed calls (the caller already made the warm-up call): up to ``repeats`` per
    input draw while the budget lasts, at least two for the first draw and one for the others."""
    samples = []
    for k, args in enumerate(sets):
        deadline = time.perf_counter() + budget_s / len(sets)
        for i in range(repeats):
            if i >= (2 if k == 0 else 1) and time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            fn(*args)
            samples.append(time.perf_counter() - t0)
    return np.asarray(samples)


def _cuda_samples(torch, fn: Callable, sets: Sequence, repeats: int, target_s: float,
                  copies: int) -> np.ndarray:
    samples = []
    for args in sets:
        rotation = [args] + [[t.clone() for t in args] for _ in range(copies - 1)]
        for _ in range(3):
            fn(*args)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn(*args)
        torch.cuda.synchronize()
        calls = int(np.clip(target_s / max(time.perf_counter() - t0, 1e-6), 1, 2000))
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        for _ in range(repeats):
            start.record()
            for i in range(calls):
                fn(*rotation[i % len(rotation)])
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / 1e3 / calls)
    return np.asarray(samples)


def run(name: str, fn: Callable, host_inputs: Sequence, settings, copies: int = 1):
    """Times baseline ``name`` ("torch" or "numpy") on every input draw; None if unavailable."""
    if name == "numpy":
        sets = [[numpy_operand(a) for a in x] for x in host_inputs]
        output = fn(*sets[0])
        samples = _host_samples(fn, sets, settings.host_budget_s, max(settings.repeats, 3))
        return Result(samples, output, "host_call", "numpy-cpu")
    torch = torch_module()
    if torch is None:
        return None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.no_grad():
        sets = [[torch_operand(torch, a, device) for a in x] for x in host_inputs]
        output = fn(*sets[0])
        if device == "cuda":
            samples = _cuda_samples(torch, fn, sets, settings.repeats, settings.target_s, copies)
            return Result(samples, output, "cuda_events", "torch-cuda")
        samples = _host_samples(fn, sets, settings.host_budget_s, max(settings.repeats, 3))
    return Result(samples, output, "host_call", "torch-cpu")
