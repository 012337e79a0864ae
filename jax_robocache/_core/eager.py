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


def is_traced(arrays) -> bool:
    """Whether any leaf of ``arrays`` is a tracer (the call is inside a transformation)."""
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(arrays))


@functools.lru_cache(maxsize=512)
def _jitted(fn: Callable, frozen: tuple):
    return jax.jit(functools.partial(fn, **dict(frozen)))


def staged(fn: Callable, *arrays, **static):
    """``fn(*arrays, **static)``; eager calls through a jit cached per ``fn`` and ``static``
    (hashable values)."""
    if is_traced(arrays):
        return fn(*arrays, **static)
    return _jitted(fn, tuple(sorted(static.items())))(*arrays)
