"""Eager calls of an op's array work through one cached ``jax.jit``.

A standalone (eager) op call runs its checks in Python, then a few array steps
(reshapes to the canonical layout, placeholders, the bind, the reshape back).
Run op by op, each step is one dispatch; ``staged(fn, *arrays, **static)``
runs them as one jitted program instead, compiled once per (``fn``, static
arguments) and, inside ``jax.jit``'s own cache, per shapes and dtypes.

Only the array work goes through it: every check (shapes, dtypes, values of
known timestamps) still runs on every call before it, so errors are raised as
before. Under a transformation (``jit``, ``vmap``, ``grad``: any operand a
tracer) ``fn`` is called directly, so the traced program is unchanged.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
from jax._src import core as _jax_core  # trace_state_clean: no public equivalent


def is_traced(arrays) -> bool:
    """Whether any leaf of ``arrays`` is a tracer (the call is inside a transformation)."""
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(arrays))


#: XLA options of an eager call's program: no CUDA graph (command buffer). Each eager call
#: gets new output buffers, so a graph would have to be updated on every call; the
#: program's few kernels are launched directly instead (scripts/eager_overhead.py
#: --xla-defaults measures the difference). Programs a user jits keep XLA's defaults.
EAGER_COMPILER_OPTIONS = {"xla_gpu_graph_min_graph_size": "1000000000"}


@functools.lru_cache(maxsize=1024)
def _jitted(fn: Callable, frozen: tuple, top_level: bool):
    # compiler options are only allowed on a top-level jit (not under a user's trace that
    # closes over concrete arrays)
    options = EAGER_COMPILER_OPTIONS if top_level else None
    return jax.jit(functools.partial(fn, **dict(frozen)), compiler_options=options)


def _top_level() -> bool:
    """Whether no trace is active (an eager call, not one inside a user's ``jit``)."""
    return _jax_core.trace_state_clean()


def staged(fn: Callable, *arrays, **static):
    """``fn(*arrays, **static)``; eager calls through a jit cached per ``fn`` and ``static``
    (hashable values)."""
    if is_traced(arrays):
        return fn(*arrays, **static)
    return _jitted(fn, tuple(sorted(static.items())), _top_level())(*arrays)
