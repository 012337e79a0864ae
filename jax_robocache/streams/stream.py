"""``Stream``: one sensor stream of an episode batch (values, timestamps, how to resample it).

A small pytree: ``values``, ``times`` and ``lengths`` are its leaves (so a
Stream passes through ``jit``/``vmap`` as an argument); ``method``, ``offset``,
``tolerance`` and ``window`` are static metadata. What each field means to ``align``:
docs/ops/align.md.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True)
class Stream:
    """One stream: ``values [..., S, D]``, ``times [..., S]``, optional ``lengths [...]``.

    Attributes:
      values: samples, float32 / bfloat16 / float16 (quaternions xyzw for slerp).
      times: sample timestamps in seconds (float32, or float64 with x64), or
        host float64/int64 epoch timestamps (converted by ``align``; epoch
        stamps already rounded to float32 are refused or give NaN there, see
        docs/ops/align.md "Epoch timestamps").
      lengths: valid samples per episode (default: all).
      method: ``"linear"``, ``"nearest"``, ``"previous"``, ``"slerp"`` or ``"window_mean"``.
      offset: seconds added to the stream's sample times (sensor latency compensation).
      tolerance: seconds; a query is invalid when the samples used are farther away.
      window: seconds; the averaging window of ``"window_mean"`` (required there).

    Full contract (``align``): docs/ops/align.md.
    """

    values: Any
    times: Any
    lengths: Any = None
    method: str = "linear"
    offset: float = 0.0
    tolerance: float | None = None
    window: float | None = None

    def tree_flatten(self):
        return (self.values, self.times, self.lengths), (self.method, self.offset,
                                                         self.tolerance, self.window)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, *aux)

    def replace(self, **changes) -> "Stream":
        return dataclasses.replace(self, **changes)
