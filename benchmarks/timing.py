"""In-graph device timing for jax functions (dispatch amortised), and the copy roofline.

``time_in_graph(fn, args)`` runs ``fn`` K times inside one jitted
``lax.fori_loop`` whose calls depend on each other (the previous output
feeds a ``+ 0 * x`` into the next call's ``feed`` argument and the whole
output is the loop carry), so XLA can neither hoist, skip nor slice the
work. Each loop iteration makes ``UNROLL`` calls: on GPUs an XLA while loop
costs several microseconds per iteration (the predicate goes to the host),
which would otherwise floor every small op; each call's output is its own
element of the carry, so it must be computed in full. The time per call is the slope
between two loop lengths, which removes the fixed launch/dispatch cost; the
median over repeats is reported, with all samples kept for statistics.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


#: Dependent calls per loop iteration (fewer when the outputs are large).
UNROLL = 16
#: Most bytes the UNROLL live outputs may take.
CARRY_BYTES = 4 << 30


def _looped(fn: Callable, args: Sequence, iters: int, feed: int, unroll: int = UNROLL):
    """jit(loop of `iters` x UNROLL dependent calls of fn(*args)); args[feed] gets the dependency.

    The operands are arguments of the jitted function (never closure constants,
    which XLA could constant-fold), and every call's output is its own element
    of the loop carry, so each must be materialised in full: otherwise XLA may
    fuse a jnp call into its successor and compute only the element it reads.
    """
    def run(*operands):
        def body(_, carry):
            outs = []
            prev = carry[-1]
            for _ in range(unroll):
                first = jax.tree_util.tree_leaves(prev)[0]
                poke = (first.reshape(-1)[0] * 0).astype(operands[feed].dtype)
                call_args = list(operands)
                call_args[feed] = operands[feed] + poke
                prev = fn(*call_args)
                outs.append(prev)
            return tuple(outs)

        shapes = jax.eval_shape(fn, *operands)
        init = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        return jax.lax.fori_loop(0, iters, body, (init,) * unroll)  # all live: all computed

    jitted = jax.jit(run)
    return lambda: jitted(*args)


def _wall(f, repeats: int) -> np.ndarray:
    jax.block_until_ready(f())  # compile + warm-up
    jax.block_until_ready(f())
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f())
        out.append(time.perf_counter() - t0)
    return np.asarray(out)


def time_in_graph(fn: Callable, args: Sequence, *, feed: int | None = None, repeats: int = 7,
                  target_s: float = 0.05) -> np.ndarray:
    """Seconds per call of ``fn(*args)`` measured in-graph; returns one sample per repeat."""
    if feed is None:
        feed = next(i for i, a in enumerate(args) if jnp.issubdtype(a.dtype, jnp.floating))
    args = [jnp.asarray(a) for a in args]
    out_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(
        jax.eval_shape(fn, *args)))
    unroll = int(np.clip(CARRY_BYTES // max(out_bytes, 1), 2, UNROLL))
    # calibrate the loop length so that one loop takes ~target_s
    probe = _looped(fn, args, 2, feed, unroll)
    t_probe = float(np.median(_wall(probe, 3)))
    k_long = int(np.clip(target_s / max(t_probe / 2, 1e-7), 8, 2000))
    k_short = max(k_long // 4, 2)
    long_loop = _looped(fn, args, k_long, feed, unroll)
    short_loop = _looped(fn, args, k_short, feed, unroll)
    jax.block_until_ready(long_loop())
    jax.block_until_ready(short_loop())
    samples = []
    for _ in range(repeats):
        t_long = float(np.median(_wall(long_loop, 1)))
        t_short = float(np.median(_wall(short_loop, 1)))
        samples.append(max(t_long - t_short, 1e-12) / ((k_long - k_short) * unroll))
    return np.asarray(samples)


def time_standalone(fn: Callable, args: Sequence, *, repeats: int = 30) -> np.ndarray:
    """Seconds per jitted call from Python, dispatch included (what a user's loop sees)."""
    jitted = jax.jit(fn)
    args = [jnp.asarray(a) for a in args]
    return _wall(lambda: jitted(*args), repeats)


def copy_bandwidth(nbytes: int = 1 << 30, repeats: int = 20) -> float:
    """Device copy bandwidth in bytes/s (bytes read + bytes written).

    The best of two measurements of one elementwise pass over ``nbytes`` (read
    once, written once): a standalone jitted call (ms long, so dispatch is
    negligible) and the in-graph loop used for the ops.
    """
    x = jnp.ones((nbytes // 4,), jnp.float32)
    standalone = float(np.median(time_standalone(lambda a: a * 1.0001, [x], repeats=repeats)))
    in_graph = float(np.median(time_in_graph(lambda a: a * 1.0001, [x], feed=0, repeats=5)))
    return 2 * nbytes / min(standalone, in_graph)


def summarize(samples: np.ndarray) -> dict:
    """median, p99, mean and a 95% confidence interval of the mean (seconds)."""
    s = np.asarray(samples, np.float64)
    half = 1.96 * s.std(ddof=1) / np.sqrt(len(s)) if len(s) > 1 else 0.0
    return {"median": float(np.median(s)), "p99": float(np.percentile(s, 99)),
            "mean": float(s.mean()), "ci95_low": float(s.mean() - half),
            "ci95_high": float(s.mean() + half), "n": int(len(s))}
