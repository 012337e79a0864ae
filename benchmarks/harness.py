"""The benchmark harness: what a case is, and how one case is measured.

An op contributes its cases from ``benchmarks/suites/<op>.py``, a module with
``cases(suite: str) -> list[Case]`` (suite is ``smoke``, ``quick`` or ``full``).
``measure(case, settings, copy_bw)`` returns one row (a dict) per implementation:

* ``ours``: our op, in-graph device time (the CUDA kernel on GPUs; checked in
  the lowered HLO of the very loop that was timed);
* ``ours_standalone``: our op as one jitted call from Python, dispatch included;
* ``jnp``: our jnp twin, in-graph, forced with ``JAX_ROBOCACHE_FORCE_JNP=1``
  (checked: the timed HLO has no custom call);
* ``torch``: the case's PyTorch baseline (what a user would write), on the same
  GPU (CUDA events) or on the CPU when there is none; skipped without torch;
* ``numpy``: the case's numpy baseline on the CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import baselines
import timing

FORCE_JNP_ENV = "JAX_ROBOCACHE_FORCE_JNP"


@dataclasses.dataclass
class Case:
    """One benchmark case of one op.

    op / name: the op (``"resample"``) and the case's name (``"train_f32"``).
    params: shape parameters shown in the tables (``dict(B=256, S=500, ...)``).
    make_inputs: ``rng -> operands`` (numpy arrays; bf16 as ml_dtypes arrays).
    fn: ``fn(*operands)`` calls our op (jax-traceable; any pytree out).
    bytes_moved: ``operands -> int``, the fewest bytes that must move through
      device memory (each input byte needed read once, each output written once).
    feed: the operand that carries the loop dependency (default: the first float
      one); pick a small one, since the kernel path copies it once per call.
    ffi_target: custom-call target name expected in the kernel path's HLO
      (default: the op's registered target).
    torch_fn / numpy_fn: baselines taking the operands as torch tensors on the
      timing device / numpy arrays (bf16 upcast to float32) and returning arrays.
    tolerance: largest accepted max|baseline - ours| / max(1, max|ours|), on the
      first output leaf (baselines that compute something else are flagged).
    goal: the op issue's target for this case, ``(kind, threshold)`` (``GOALS``):
      checked on the ``ours`` row and shown in the tables.
    """

    op: str
    name: str
    params: dict
    make_inputs: Callable[[np.random.Generator], Sequence]
    fn: Callable[..., Any]
    bytes_moved: Callable[[Sequence], int]
    feed: int | None = None
    ffi_target: str | None = None
    torch_fn: Callable[..., Any] | None = None
    numpy_fn: Callable[..., Any] | None = None
    tolerance: float = 1e-3
    goal: tuple[str, float] | None = None


#: Goal kinds: kind -> (value from the case's rows by impl, met(value, threshold), text).
GOALS = {
    "vs_jnp_min": (lambda r: r["jnp"]["ours_speedup"] if "jnp" in r else None,
                   lambda v, t: v >= t, lambda v, t: f"{v:.1f}x vs jnp (goal >= {t:g}x)"),
    "vs_numpy_min": (lambda r: r["numpy"]["ours_speedup"] if "numpy" in r else None,
                     lambda v, t: v >= t,
                     lambda v, t: f"{v:.0f}x vs the numpy baseline (goal >= {t:g}x)"),
    "copy_fraction_min": (lambda r: r["ours"]["bw_fraction"], lambda v, t: v >= t,
                          lambda v, t: f"{100 * v:.0f}% of copy (goal >= {100 * t:.0f}%)"),
    "roofline_max": (lambda r: 1 / r["ours"]["bw_fraction"] if r["ours"]["bw_fraction"] else None,
                     lambda v, t: v <= t,
                     lambda v, t: f"{v:.2f}x the copy time (goal <= {t:g}x)"),
    "p50_max_s": (lambda r: r["ours"]["median"], lambda v, t: v <= t,
                  lambda v, t: f"p50 {v * 1e3:.3f} ms (goal <= {t * 1e3:g} ms)"),
}


def check_goal(goal: tuple[str, float] | None, rows_by_impl: dict) -> dict:
    """``goal`` (text) and ``goal_met`` (None: no goal, or not measurable) for the ours row."""
    if goal is None:
        return dict(goal=None, goal_met=None)
    kind, threshold = goal
    value_of, met, text = GOALS[kind]
    value = value_of(rows_by_impl)
    if value is None:
        return dict(goal=f"{kind} {threshold:g}: not measured", goal_met=None)
    return dict(goal=text(value, threshold), goal_met=bool(met(value, threshold)))


@dataclasses.dataclass
class Settings:
    """How hard to measure: N seeds (input draws) x R repeats, after warm-up."""

    seeds: int = 3
    repeats: int = 7
    standalone_repeats: int = 30
    target_s: float = 0.05          # one in-graph loop's length
    unroll: int = timing.UNROLL
    stream_bytes: int = 256 << 20   # rotate input copies so a loop iteration reads this much
    host_budget_s: float = 2.0      # per baseline per case (numpy can be slow)
    torch: bool = True
    numpy: bool = True


SUITE_SETTINGS = {
    "smoke": Settings(seeds=2, repeats=2, standalone_repeats=3, target_s=0.002, unroll=2,
                      stream_bytes=0, host_budget_s=0.05),
    "quick": Settings(seeds=2, repeats=5, standalone_repeats=20, target_s=0.03, host_budget_s=1.0),
    "full": Settings(),
}


@contextlib.contextmanager
def force_jnp(on: bool):
    """Sets or clears JAX_ROBOCACHE_FORCE_JNP (read when a function is lowered)."""
    old = os.environ.get(FORCE_JNP_ENV)
    os.environ[FORCE_JNP_ENV] = "1" if on else "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ[FORCE_JNP_ENV]
        else:
            os.environ[FORCE_JNP_ENV] = old


def current_device():
    """The device jax places new arrays on (honours ``jax.default_device``)."""
    return next(iter(jnp.zeros(()).devices()))


def default_ffi_target(op: str) -> str | None:
    from jax_robocache._core import primitive as _primitive
    registered = _primitive.REGISTRY.get(op)
    return registered.ffi_target if registered is not None else None


def first_leaf(tree) -> np.ndarray:
    """The first leaf of a jax/numpy/torch pytree, as a numpy array."""
    leaf = jax.tree_util.tree_leaves(tree)[0]
    if hasattr(leaf, "detach"):  # a torch tensor (bf16 has no numpy twin: upcast)
        leaf = leaf.detach().cpu()
        return (leaf.float() if leaf.is_floating_point() else leaf).numpy()
    return np.asarray(leaf)


def relative_error(ours, theirs) -> float | None:
    """max|theirs - ours| / max(1, max|ours|) on the first leaves (None: shapes differ)."""
    a, b = first_leaf(ours).astype(np.float64), first_leaf(theirs).astype(np.float64)
    if a.shape != b.shape:
        return None
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a - b))
    scale = max(1.0, float(np.nanmax(np.abs(a), initial=0.0)))
    return float(np.nanmax(np.where(np.isnan(diff), np.inf, diff), initial=0.0) / scale)


def _row(case: Case, impl: str, timing_kind: str, backend: str, samples, nbytes: float,
         copy_bw: float, device_bound: bool = True, **extra) -> dict:
    stats = timing.summarize(samples)
    median = stats["median"]
    bandwidth = nbytes / median if device_bound else None
    return dict(op=case.op, case=case.name, impl=impl, timing=timing_kind, backend=backend,
                params=dict(case.params), bytes=int(nbytes), **stats,
                bandwidth_Bps=bandwidth,
                bw_fraction=bandwidth / copy_bw if bandwidth and copy_bw else None,
                samples=[float(s) for s in np.asarray(samples).ravel()], **extra)


def _time_ours(case: Case, inputs: list, settings: Settings, target: str | None, kernel: bool):
    """In-graph samples over every input draw, the loop's shape, and the HLO verdict."""
    with force_jnp(not kernel):
        fn = lambda *a: case.fn(*a)  # noqa: E731  (a fresh function: lowered afresh)
        timer = timing.InGraphTimer(fn, inputs[0], feed=case.feed, target_s=settings.target_s,
                                    unroll=settings.unroll, stream_bytes=settings.stream_bytes)
        has_call = bool(target) and target in timer.hlo_text()
        samples = np.concatenate([timer.samples(x, settings.repeats) for x in inputs])
    loop = dict(unroll=timer.unroll, input_copies=timer.copies, loop_calls=timer.k_long)
    return samples, loop, has_call


def measure(case: Case, settings: Settings, copy_bw: float, seed: int = 0,
            log: Callable[[str], None] = print, errors: list | None = None) -> list[dict]:
    """Every implementation's row for one case (see the module docstring).

    A baseline that raises is left out and its error appended to ``errors`` (raised
    when ``errors`` is None): a broken baseline must not cost the case its own rows.
    """
    t_start = time.perf_counter()
    target = case.ffi_target or default_ffi_target(case.op)
    host_inputs = [case.make_inputs(np.random.default_rng([seed, s]))
                   for s in range(settings.seeds)]
    inputs = [[jnp.asarray(a) for a in x] for x in host_inputs]
    nbytes = float(np.mean([case.bytes_moved(x) for x in host_inputs]))
    on_gpu = current_device().platform == "gpu"

    samples, loop, uses_kernel = _time_ours(case, inputs, settings, target, kernel=True)
    backend = "cuda-ffi" if uses_kernel else "jnp"
    if on_gpu and target and not uses_kernel:
        log(f"WARNING {case.op}/{case.name}: the kernel path has no {target} call")
    rows = [_row(case, "ours", "in_graph", backend, samples, nbytes, copy_bw,
                 uses_kernel=uses_kernel, **loop)]
    ours = rows[0]["median"]

    with force_jnp(False):
        jitted = jax.jit(lambda *a: case.fn(*a))
        reference = jitted(*inputs[0])
        standalone = np.concatenate([timing.wall(lambda: jitted(*x), settings.standalone_repeats)
                                     for x in inputs])
    rows.append(_row(case, "ours_standalone", "standalone_jit", backend, standalone, nbytes,
                     copy_bw))

    twin, twin_loop, twin_has_call = _time_ours(case, inputs, settings, target, kernel=False)
    if twin_has_call:
        raise RuntimeError(f"{FORCE_JNP_ENV}=1 did not take effect for {case.op}/{case.name}")
    rows.append(_row(case, "jnp", "in_graph", "jnp", twin, nbytes, copy_bw, **twin_loop))

    for name, fn in (("torch", case.torch_fn), ("numpy", case.numpy_fn)):
        if fn is None or not getattr(settings, name):
            continue
        try:
            result = baselines.run(name, fn, host_inputs, settings, copies=loop["input_copies"])
        except Exception as e:  # noqa: BLE001
            if errors is None:
                raise
            log(f"ERROR {case.op}/{case.name}: the {name} baseline failed: {e!r}")
            errors.append(f"{case.op}/{case.name} ({name} baseline): {type(e).__name__}: {e}")
            continue
        if result is None:
            continue
        err = relative_error(reference, result.output)
        if err is None or err > case.tolerance:
            log(f"WARNING {case.op}/{case.name}: {name} baseline differs from ours "
                f"(relative error {err})")
        rows.append(_row(case, name, result.timing, result.backend, result.samples, nbytes,
                         copy_bw, device_bound=result.backend == "torch-cuda",
                         relative_error=err, agrees=err is not None and err <= case.tolerance))

    for row in rows:
        row["ours_speedup"] = row["median"] / ours  # > 1: ours is that many times faster
        row["seconds_spent"] = None
    rows[0].update(check_goal(case.goal, {row["impl"]: row for row in rows}))
    rows[0]["seconds_spent"] = time.perf_counter() - t_start
    return rows
