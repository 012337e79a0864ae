"""In-graph device timing for jax functions (dispatch amortised), and the copy roofline.

``time_in_graph(fn, args)`` runs ``fn`` K times inside one jitted
``lax.fori_loop`` whose calls depend on each other (the previous output
feeds a ``+ 0 * x`` into the next call's ``feed`` argument and the whole
output is the loop carry), so XLA can neither hoist, skip nor slice the
work. Each loop iteration makes up to ``UNROLL`` calls: on GPUs an XLA while loop
costs several microseconds per iteration (the predicate goes to the host),
which would otherwise floor every small op; each call's output is its own
element of the carry, so it must be computed in full (``InGraphTimer`` picks
the unroll, and can rotate over copies of the inputs to defeat the L2 cache). The time per call is the slope
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
#: What one iteration of an XLA while loop is assumed to cost on its own (GPU: the
#: predicate goes to the host); the unroll keeps it under ~2% of an iteration.
LOOP_OVERHEAD_S = 10e-6


def _nbytes(tree) -> int:
    return sum(x.size * jnp.dtype(x.dtype).itemsize for x in jax.tree_util.tree_leaves(tree))


def _looped(fn: Callable, n_args: int, copies: int, iters: int, feed: int, unroll: int):
    """jit(loop of `iters` x unroll dependent calls of fn); operand `feed` gets the dependency
    (from the first element of the previous call's first output leaf, of any dtype: an integer
    grid or a pytree works too).

    The jitted function takes ``copies`` sets of ``n_args`` operands, flattened;
    call j of an iteration reads set ``j % copies`` (so inputs larger in total
    than the L2 cache are streamed from memory rather than re-read from L2).
    The operands are arguments of the jitted function (never closure constants,
    which XLA could constant-fold), and every call's output is its own element
    of the loop carry, so each must be materialised in full: otherwise XLA may
    fuse a jnp call into its successor and compute only the element it reads.
    """
    def run(*flat):
        sets = [flat[i * n_args:(i + 1) * n_args] for i in range(copies)]

        def body(_, carry):
            outs = []
            prev = carry[-1]
            for j in range(unroll):
                operands = list(sets[j % copies])
                first = jax.tree_util.tree_leaves(prev)[0]
                # Through float32: XLA folds an integer x * 0 to 0 (an int32 count grid
                # would then feed nothing, and the calls would be hoisted or merged).
                poke = (first.reshape(-1)[0].astype(jnp.float32) * 0).astype(
                    operands[feed].dtype)
                operands[feed] = operands[feed] + poke
                prev = fn(*operands)
                outs.append(prev)
            return tuple(outs)

        shapes = jax.eval_shape(fn, *sets[0])
        init = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        return jax.lax.fori_loop(0, iters, body, (init,) * unroll)  # all live: all computed

    return jax.jit(run)


def wall(f: Callable, repeats: int, warmup: int = 2) -> np.ndarray:
    """Seconds per ``f()`` (blocked until ready), after ``warmup`` untimed calls."""
    for _ in range(warmup):
        jax.block_until_ready(f())
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f())
        out.append(time.perf_counter() - t0)
    return np.asarray(out)



class InGraphTimer:
    """The in-graph loops of one function, compiled once for operands of one set of shapes.

    Calibration on ``example_args``: a probe loop (2 iterations of 2 calls)
    estimates one call's time t; the unroll is then the smallest (from 2 to
    ``unroll``) that keeps the loop's own per-iteration cost (``LOOP_OVERHEAD_S``
    assumed) under ~2% of an iteration, since compiling many copies of a big
    jnp graph can take minutes; one long loop takes ~``target_s``.
    ``samples(args, repeats)`` then times any operands of the same shapes (other
    random draws) without recompiling. ``stream_bytes`` > 0 rotates the loop over
    enough copies of the operands (at most the unroll) that one iteration reads at
    least that many input bytes: use a few times the L2 size for cold-cache numbers.
    """

    def __init__(self, fn: Callable, example_args: Sequence, *, feed: int | None = None,
                 target_s: float = 0.05, unroll: int = UNROLL, stream_bytes: int = 0):
        args = [jnp.asarray(a) for a in example_args]
        if feed is None:
            feed = next(i for i, a in enumerate(args) if jnp.issubdtype(a.dtype, jnp.floating))
        out_bytes = _nbytes(jax.eval_shape(fn, *args))
        in_bytes = max(_nbytes(args), 1)
        make = lambda iters, unroll, copies: _looped(  # noqa: E731
            fn, len(args), copies, iters, feed, unroll)
        probe = make(2, 2, 1)
        t_call = float(np.median(wall(lambda: probe(*args), 3))) / 4
        wanted = int(np.ceil(50 * LOOP_OVERHEAD_S / max(t_call, 1e-9)))
        self.unroll = int(np.clip(min(wanted, CARRY_BYTES // max(out_bytes, 1)), 2,
                                  max(unroll, 2)))
        wanted = -(-stream_bytes // in_bytes) if stream_bytes > 0 else 1
        self.copies = int(np.clip(wanted, 1, min(self.unroll, max(CARRY_BYTES // in_bytes, 1))))
        self.k_long = int(np.clip(target_s / (t_call * self.unroll), 8, 2000))
        self.k_short = max(self.k_long // 4, 2)
        self._long = make(self.k_long, self.unroll, self.copies)
        reuse = (self.k_short, self.unroll, self.copies) == (2, 2, 1)
        self._short = probe if reuse else make(self.k_short, self.unroll, self.copies)
        self._example = self._place(args)

    def _place(self, args: Sequence) -> list:
        args = [jnp.asarray(a) for a in args]
        copies = [args] + [[jnp.array(a, copy=True) for a in args] for _ in range(self.copies - 1)]
        return [a for c in copies for a in c]

    def hlo_text(self) -> str:
        """The lowered (StableHLO) text of the timed loop: what really ran."""
        return self._long.lower(*self._example).as_text()

    def samples(self, args: Sequence, repeats: int) -> np.ndarray:
        """Seconds per call, one sample per repeat (slope between the two loop lengths)."""
        flat = self._place(args)
        long_loop, short_loop = (lambda: self._long(*flat)), (lambda: self._short(*flat))
        wall(long_loop, 0, warmup=1)
        wall(short_loop, 0, warmup=1)
        calls = (self.k_long - self.k_short) * self.unroll
        return np.asarray([max(float(wall(long_loop, 1, 0)[0] - wall(short_loop, 1, 0)[0]),
                               1e-12) / calls for _ in range(repeats)])


def time_in_graph(fn: Callable, args: Sequence, *, feed: int | None = None, repeats: int = 7,
                  target_s: float = 0.05) -> np.ndarray:
    """Seconds per call of ``fn(*args)`` measured in-graph; returns one sample per repeat."""
    return InGraphTimer(fn, args, feed=feed, target_s=target_s).samples(args, repeats)


def time_standalone(fn: Callable, args: Sequence, *, repeats: int = 30) -> np.ndarray:
    """Seconds per jitted call from Python, dispatch included (what a user's loop sees)."""
    jitted = jax.jit(fn)
    args = [jnp.asarray(a) for a in args]
    return wall(lambda: jitted(*args), repeats)


def copy_bandwidth(nbytes: int = 1 << 30, repeats: int = 20, unroll: int = UNROLL) -> float:
    """Device copy bandwidth in bytes/s (bytes read + bytes written).

    The best of two measurements of one elementwise pass over ``nbytes`` (read
    once, written once): a standalone jitted call (ms long, so dispatch is
    negligible) and the in-graph loop used for the ops.
    """
    x = jnp.ones((nbytes // 4,), jnp.float32)
    standalone = float(np.median(time_standalone(lambda a: a * 1.0001, [x], repeats=repeats)))
    timer = InGraphTimer(lambda a: a * 1.0001, [x], feed=0, unroll=unroll)
    in_graph = float(np.median(timer.samples([x], 5)))
    return 2 * nbytes / min(standalone, in_graph)


def summarize(samples: np.ndarray) -> dict:
    """median, p99, mean and a 95% confidence interval of the mean (seconds)."""
    s = np.asarray(samples, np.float64)
    half = 1.96 * s.std(ddof=1) / np.sqrt(len(s)) if len(s) > 1 else 0.0
    return {"median": float(np.median(s)), "p99": float(np.percentile(s, 99)),
            "mean": float(s.mean()), "ci95_low": float(s.mean() - half),
            "ci95_high": float(s.mean() + half), "n": int(len(s))}
