"""The jnp twin of ``resample``: the lowering off CUDA and the reference of its CUDA kernel.

One episode is the shared query planning of ``interp`` (``plan_queries``,
the twin of the CUDA planner) followed by ``combine``; ``map_episodes`` runs
it over the batch.
"""

from __future__ import annotations

import jax.numpy as jnp

from . import interp as _interp
from .._core.batching import map_episodes
from .timestamps import unresolved_episodes


def resample_twin(values, times, queries, lengths, *, method: int, out_of_range: int):
    """values [B,S,D], times [Bt,S], queries [Bq,T], lengths [Bl] (Bx in {1,B}) ->
    (out [B,T,D], valid [B,T]).

    Every query of an episode whose times the dtype cannot resolve (the resolution rule of
    ``timestamps.py``) is treated as NaN, as in the CUDA kernel.
    """
    S = values.shape[1]
    n = lengths.astype(jnp.int32)

    def one_episode(v, t, q, n_b):
        n_b = jnp.clip(n_b, 0, S)
        q = jnp.where(unresolved_episodes(t, n_b, xp=jnp), jnp.asarray(jnp.nan, q.dtype), q)
        plan = _interp.plan_queries(t, n_b, q, method=method, out_of_range=out_of_range)
        return _interp.combine(v, plan, method=method), plan.valid

    return tuple(map_episodes(one_episode, values, times, queries, n))
