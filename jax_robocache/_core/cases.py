"""What a case catalogue is: named inputs of one op, shared by every consumer.

Each op has one catalogue, ``<family>/<op>_cases.py``, whose ``CASES`` maps a
case name to a ``Case``; ``case.make(rng, size, **overrides)`` draws one
``Call`` of the op from ``rng``. The golden files, the determinism and
sharding tests, ``self_test``, the GPU workload and the benchmark suites all
draw their inputs from the catalogues, so a new op adds its inputs once.

Sizes: ``"small"`` (tests, golden files: a few episodes, tens of samples) and
``"large"`` (thousands of samples per episode: where an order-dependent
reduction or a race would show). Overrides change any size parameter (say,
``B`` for a sharding test's batch) or option of the case.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

class Call(NamedTuple):
    """One call of an op: ``fn(**arrays)`` runs it.

    ``arrays``: every array argument by name (numpy; bfloat16 as ml_dtypes),
    in the op's argument order. ``batched``: the names whose axis 0 is the
    batch (episodes, clouds); the others are shared by the whole batch (a
    common clock, a camera's timestamps). ``options``: the static arguments
    ``fn`` passes (method, mode, grid, ...), for references and labels.
    """

    fn: Callable[..., Any]
    arrays: dict[str, np.ndarray]
    batched: tuple[str, ...]
    options: dict[str, Any]

    def __call__(self):
        return self.fn(**self.arrays)

    def positional(self) -> tuple[Callable[..., Any], tuple]:
        """``(f, args)``: ``f(*args)`` runs the call with the batched arrays as positional
        arguments (in order) and the shared ones captured, as jit/sharding tests want."""
        shared = {k: v for k, v in self.arrays.items() if k not in self.batched}
        names = [k for k in self.arrays if k in self.batched]

        def f(*args):
            return self.fn(**dict(zip(names, args)), **shared)

        return f, tuple(self.arrays[k] for k in names)


class Case(NamedTuple):
    """A named case: ``make(rng, size="small", **overrides) -> Call``."""

    name: str
    make: Callable[..., Call]


def sized(sizes: Mapping[str, Mapping[str, Any]], size: str, overrides: Mapping[str, Any]):
    """The size parameters of ``size`` with ``overrides`` applied (unknown sizes raise)."""
    if size not in sizes:
        raise ValueError(f"size must be one of {sorted(sizes)}, got {size!r}")
    return {**sizes[size], **overrides}
