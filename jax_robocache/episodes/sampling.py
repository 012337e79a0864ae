"""Anchors for training windows, drawn on the device: uniform, per-episode weighted, or epochs.

An anchor is a pair (episode, time): the time of one sample of a *reference*
stream (``"action"`` by default). ``AnchorTable`` lists the eligible ones:

* every sample of the reference stream, except masked samples (its ``valid``);
* with ``require`` (a spec, name -> ``Window``): only the anchors whose
  windows are complete, i.e. every entry of every required window is valid
  (no padding). Computed by ``sample_windows`` at every reference sample, so a
  table costs one call over N_ref anchors: build it once outside the training
  step (``store.anchor_table(...)``; it is a pytree) for large stores;
* ``weights [E]`` (non-negative): episode e is drawn with probability
  proportional to ``weights[e]`` among episodes with an eligible anchor, then
  an anchor uniformly within it. Without weights every eligible (episode,
  sample) pair is equally likely.

Draws are exact integer ranks (no float cumulative sums), deterministic for a
key, and run inside ``jit``. When nothing is eligible, draws give
``episode = -1`` and ``anchor = NaN`` (all-invalid windows).

Epochs: ``epoch_order(key)`` is a key-determined permutation with the
eligible anchors first (episodes of weight 0 excluded), ``epoch_batch`` cuts
batch ``step`` of it (entries past the last eligible anchor are ``-1`` / NaN
and flagged False); ``EpochIterator`` loops over it on the host.
"""

from __future__ import annotations

import functools
from typing import Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["AnchorTable", "Anchors", "EpochIterator"]


class Anchors(NamedTuple):
    """Anchors for ``sample_windows``: ``episode [B]`` int32 (-1: none), ``anchor [B]`` seconds
    (NaN: none)."""
    episode: jax.Array
    anchor: jax.Array


def _require_items(require) -> tuple:
    if require is None:
        return ()
    if not isinstance(require, Mapping):
        raise TypeError(f"require must be a spec (mapping name -> Window), got "
                        f"{type(require).__name__}")
    return tuple(sorted(require.items()))


@functools.partial(jax.jit, static_argnames=("reference", "require"))
def _eligible(store, reference: str, require: tuple):
    """[N_ref] bool: unmasked reference samples whose required windows are complete."""
    from .windows import sample_windows
    ref = store.streams[reference]
    N = ref.times.shape[0]
    episode = (jnp.searchsorted(ref.offsets, jnp.arange(N, dtype=jnp.int32), side="right")
               - 1).astype(jnp.int32)
    ok = jnp.ones((N,), bool) if ref.valid is None else ref.valid
    if require and N:
        out = sample_windows(store, episode, ref.times, dict(require))
        for w in out.values():
            ok = ok & w.valid.all(axis=-1)
    return episode, ok


@jax.tree_util.register_pytree_node_class
class AnchorTable:
    """The eligible anchors of one reference stream (a pytree: build it once, pass it to jit).

    Attributes (arrays over the N_ref reference samples or the E episodes):
      episode: ``[N_ref]`` int32 episode of each sample.
      times: ``[N_ref]`` the sample's time (its anchor).
      eligible: ``[N_ref]`` bool.
      rank: ``[N_ref]`` int32 eligible samples up to and including each one.
      counts: ``[E]`` int32 eligible anchors per episode.
      weights: ``[E]`` float32 episode weights, or None (uniform over anchors).
    """

    def __init__(self, episode, times, eligible, rank, counts, weights):
        self.episode, self.times, self.eligible = episode, times, eligible
        self.rank, self.counts, self.weights = rank, counts, weights

    def tree_flatten(self):
        return (self.episode, self.times, self.eligible, self.rank, self.counts,
                self.weights), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)

    @classmethod
    def build(cls, store, reference: str = "action", *, require=None, weights=None):
        if reference not in store.streams:
            raise KeyError(f"reference stream {reference!r} is not in the store; streams: "
                           f"{sorted(store.streams)}")
        items = _require_items(require)
        if items:
            from .windows import check_spec
            check_spec(store, dict(items))
        episode, eligible = _eligible(store, reference, items)
        E = store.num_episodes
        counts = jax.ops.segment_sum(eligible.astype(jnp.int32), episode, num_segments=E)
        rank = jnp.cumsum(eligible, dtype=jnp.int32)
        if weights is not None:
            weights = _check_weights(weights, E)
        return cls(episode, store.streams[reference].times, eligible, rank, counts, weights)

    @property
    def size(self) -> int:
        """N_ref, the reference stream's sample count (static)."""
        return self.episode.shape[0]

    def count(self):
        """Number of eligible anchors (int32 scalar)."""
        return self.rank[-1] if self.size else jnp.zeros((), jnp.int32)

    def _pick(self, ranks, ok) -> Anchors:
        """The anchors of 0-based eligible ranks (``ok`` False: none)."""
        j = jnp.clip(jnp.searchsorted(self.rank, ranks, side="right"), 0, self.size - 1)
        return Anchors(jnp.where(ok, self.episode[j], -1).astype(jnp.int32),
                       jnp.where(ok, self.times[j], jnp.nan).astype(self.times.dtype))

    def _none(self, batch_size) -> Anchors:
        return Anchors(jnp.full((batch_size,), -1, jnp.int32),
                       jnp.full((batch_size,), jnp.nan, self.times.dtype))

    def sample(self, key, batch_size: int) -> Anchors:
        """``batch_size`` anchors drawn with replacement (see the module docstring)."""
        batch_size = _batch_size(batch_size)
        if not self.size:
            return self._none(batch_size)
        if self.weights is None:
            total = self.count()
            r = jax.random.randint(key, (batch_size,), 0, jnp.maximum(total, 1))
            return self._pick(r, jnp.broadcast_to(total > 0, (batch_size,)))
        w = jnp.where(self.counts > 0, self.weights, 0)
        k_episode, k_anchor = jax.random.split(key)
        logits = jnp.where(w > 0, jnp.log(jnp.where(w > 0, w, 1)), -jnp.inf)
        e = jax.random.categorical(k_episode, logits, shape=(batch_size,))
        r = jax.random.randint(k_anchor, (batch_size,), 0, jnp.maximum(self.counts[e], 1))
        before = jnp.cumsum(self.counts) - self.counts
        ok = jnp.broadcast_to(jnp.sum(w) > 0, (batch_size,))
        return self._pick(before[e] + r, ok)

    def _epoch_eligible(self):
        if self.weights is None:
            return self.eligible
        return self.eligible & (self.weights[self.episode] > 0)

    def epoch_order(self, key):
        """``(order [N_ref] int32, count)``: a key-determined permutation of the reference
        samples whose first ``count`` entries are the eligible anchors."""
        eligible = self._epoch_eligible()
        perm = jax.random.permutation(key, self.size).astype(jnp.int32)
        order = perm[jnp.argsort(~eligible[perm], stable=True)]
        return order, jnp.sum(eligible, dtype=jnp.int32)

    def epoch_batch(self, order, count, step, batch_size: int):
        """Batch ``step`` of an epoch: ``(Anchors, ok [B])``; entries past ``count`` are none."""
        batch_size = _batch_size(batch_size)
        if not self.size:
            return self._none(batch_size), jnp.zeros((batch_size,), bool)
        idx = step * batch_size + jnp.arange(batch_size, dtype=jnp.int32)
        ok = idx < count
        j = order[jnp.clip(idx, 0, self.size - 1)]
        return Anchors(jnp.where(ok, self.episode[j], -1).astype(jnp.int32),
                       jnp.where(ok, self.times[j], jnp.nan).astype(self.times.dtype)), ok


def _batch_size(batch_size) -> int:
    if isinstance(batch_size, jax.core.Tracer) or int(batch_size) != batch_size \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a static positive int, got {batch_size!r}")
    return int(batch_size)


def _check_weights(weights, E):
    w = jnp.asarray(weights)
    if w.shape != (E,):
        raise ValueError(f"weights must be [E] = [{E}] (one per episode), got shape "
                         f"{tuple(w.shape)}")
    if not jnp.issubdtype(w.dtype, jnp.floating) and not jnp.issubdtype(w.dtype, jnp.integer):
        raise TypeError(f"weights must be numbers, got {w.dtype.name}")
    if not isinstance(w, jax.core.Tracer):
        host = np.asarray(w, np.float64)
        if not np.all(np.isfinite(host)) or (host < 0).any():
            raise ValueError("weights must be finite and >= 0")
    return w.astype(jnp.float32)


class EpochIterator:
    """Batches of one epoch: every eligible anchor exactly once, in a ``key``-determined order.

    Yields ``(Anchors, ok [B])``; the last batch is partial (``ok`` False past
    the end) unless ``drop_last``. ``len()`` is the number of batches.
    """

    def __init__(self, table: AnchorTable, key, batch_size: int, drop_last: bool = False):
        self.table, self.batch_size = table, _batch_size(batch_size)
        self.order, count = jax.jit(AnchorTable.epoch_order)(table, key)
        self.count = int(count)
        self.drop_last = drop_last
        self._batch = jax.jit(AnchorTable.epoch_batch, static_argnums=4)

    def __len__(self) -> int:
        if self.drop_last:
            return self.count // self.batch_size
        return -(-self.count // self.batch_size)

    def __iter__(self):
        for step in range(len(self)):
            yield self._batch(self.table, self.order, self.count, np.int32(step),
                              self.batch_size)
