"""Per-episode batching of canonical operands, shared by every jnp twin.

A canonical operand's axis 0 is the episode (cloud) axis, of size B, or of
size 1 for an operand shared by every episode (a common clock, default
lengths). ``batch_size`` reads B from such operands; ``map_episodes`` runs a
one-episode function over the batch, mapping the per-episode operands and
handing the shared ones to every episode.
"""

from __future__ import annotations

from typing import Callable

import jax


def batch_size(*operands) -> int:
    """B of operands whose axis 0 is B or 1 (shared): the largest, 0 when any is empty."""
    sizes = [x.shape[0] for x in operands]
    return 0 if 0 in sizes else max(sizes)


def map_episodes(fn: Callable, *operands):
    """``fn(*one_episode_operands)`` over the batch: its outputs gain the leading axis B.

    An operand of size B on axis 0 is mapped (``fn`` sees one episode's
    slice); a shared operand of size 1 is passed as its only slice to every
    episode. With B == 1 nothing is mapped and the outputs get axis 0 of size 1.
    """
    B = batch_size(*operands)
    axes = tuple(0 if x.shape[0] == B and B != 1 else None for x in operands)
    args = [x if ax == 0 else x[0] for x, ax in zip(operands, axes)]
    return jax.vmap(fn, in_axes=axes, axis_size=B)(*args)
