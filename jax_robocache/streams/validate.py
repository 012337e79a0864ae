"""Timestamp checks shared by ``resample`` and ``align``: resolution guard and ``validate=True``.

* ``guard_resolution``: the resolution rule of ``timestamps.unresolved_episodes``
  on the times as given, evaluated at trace time whenever they are known
  (numpy, concrete arrays: ``jax.ensure_compile_time_eval``); known
  unresolved times raise a ValueError that says what to do. Traced times give
  a traced mask (for ``check_times``): the primitives apply the same rule
  themselves (every query of an unresolved episode is NaN, in the jnp twins
  and the CUDA kernels alike), so nothing runs before them.
* ``check_times``: the ``validate=True`` checks (lengths within [0, S], valid
  times finite, non-decreasing and resolved), through ``checkify.check``: they
  raise eagerly; under ``jit`` the caller wraps the function in
  ``checkify.checkify`` (``_core.checks.requires_checkify`` says so otherwise).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from .._core.contract import valid_lengths
from .timestamps import resolution_error, unresolved_episodes

__all__ = ["check_times", "guard_resolution", "raise_if_unresolved", "resolved_lengths"]


@jax.jit
def _unresolved_jitted(times, lengths):
    return unresolved_episodes(times, lengths, xp=jnp)


def guard_resolution(op: str, label: str, times, lengths):
    """bool ``[...]``: unresolved episodes of ``times [..., S]`` with ``lengths [...]`` (int32).

    Call it with the times as received (numpy stays numpy) and lengths from
    ``valid_lengths`` computed under ``jax.ensure_compile_time_eval``. Known
    values with an unresolved episode raise; a known all-False mask is returned
    as is. The mask only feeds ``check_times``: the ops apply the rule themselves.
    """
    if isinstance(times, jax.core.Tracer) or isinstance(lengths, jax.core.Tracer):
        return unresolved_episodes(times, lengths, xp=jnp)  # traced: the mask is staged
    with jax.ensure_compile_time_eval():  # one jitted dispatch, not one per jnp step
        unresolved = _unresolved_jitted(jnp.asarray(times), lengths)
    if np.asarray(unresolved).any():
        raise resolution_error(op, label, times, lengths, unresolved)
    return unresolved


def resolved_lengths(times, lengths, S: int):
    """Inside the staged program of an eager call: ``lengths`` as ``valid_lengths`` makes
    them and the mask of unresolved episodes. One program computes both with the op, so an
    eager call costs one dispatch; ``raise_if_unresolved`` turns a set mask into the eager
    error afterwards."""
    lengths = valid_lengths(lengths, S)
    return lengths, unresolved_episodes(times, lengths, xp=jnp)


def raise_if_unresolved(op: str, label: str, times, lengths, S: int, unresolved,
                        lengths_label: str = "lengths"):
    """The eager error of ``guard_resolution`` for a mask from ``resolved_lengths``. The mask
    comes back traced when concrete operands are closed over by a jitted function (an
    enclosing trace): then ``guard_resolution`` checks the known values, as it does for
    every traced call (the op applies the rule in the program)."""
    if isinstance(unresolved, jax.core.Tracer):
        with jax.ensure_compile_time_eval():
            guard_resolution(op, label, times, valid_lengths(lengths, S, lengths_label))
        return
    unresolved = np.asarray(unresolved)
    if unresolved.any():
        with jax.ensure_compile_time_eval():
            lengths = valid_lengths(lengths, S, lengths_label)
        raise resolution_error(op, label, times, lengths, unresolved)


def _first_false(mask):
    """Flat index of the first False of ``mask`` (0 when it is empty)."""
    flat = mask.reshape(-1)
    return jnp.argmin(flat) if flat.size else jnp.int32(0)


def check_times(op: str, label: str, times, lengths, S: int, unresolved, *,
                lengths_label: str = "lengths"):
    """checkify checks of one timestamp array: lengths in [0, S]; valid times finite, sorted,
    resolved. ``lengths`` as given by the user (not clamped), broadcast to ``times``' lead."""
    lengths = jnp.broadcast_to(lengths, times.shape[:-1])
    in_len = jnp.arange(S) < lengths[..., None]
    finite = jnp.where(in_len, jnp.isfinite(times), True)
    sorted_ = jnp.where(in_len[..., 1:], times[..., 1:] >= times[..., :-1], True)
    resolved = ~jnp.broadcast_to(unresolved, times.shape[:-1])
    checkify.check(jnp.all((lengths >= 0) & (lengths <= S)),
                   f"{op}: {lengths_label} must lie in [0, {{S}}] (min {{lo}}, max {{hi}})",
                   S=jnp.int32(S), lo=jnp.min(lengths, initial=0),
                   hi=jnp.max(lengths, initial=0))
    checkify.check(jnp.all(finite), f"{op}: {label} has non-finite valid entries (first at "
                   "flat index {i})", i=_first_false(finite))
    checkify.check(jnp.all(sorted_), f"{op}: {label} must be non-decreasing within "
                   f"{lengths_label} (first violation at flat index {{i}})",
                   i=_first_false(sorted_))
    checkify.check(jnp.all(resolved), f"{op}: {label} cannot be resolved in "
                   f"{jnp.dtype(times.dtype).name} (first at flat episode index {{i}}): their mean "
                   "sample spacing is below 4 eps |t| (epoch seconds?); those queries are NaN. "
                   "Pass numpy float64 seconds / int64 nanoseconds (converted on the host), "
                   "use jax_robocache.relative_timestamps, or enable jax_enable_x64",
                   i=_first_false(resolved))
