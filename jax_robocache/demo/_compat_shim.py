"""TEMPORARY stand-ins for ``jax_robocache.align`` and ``jax_robocache.voxelize``.

DELETE THIS FILE once issue 3 (``align``) and issue 4 (``voxelize``) are on
main: ``_ops.py`` then imports the real ops and never reaches this module.

Only the subset the demo uses, written from the two issues' contracts with
``resample`` and jnp (no kernels, no argument checking):

* ``align(streams, query_times, out_of_range=...)``: methods ``linear``,
  ``nearest``, ``previous`` and ``slerp`` with ``offset``; ``tolerance`` for
  ``previous`` only (q - t_i > tolerance -> invalid). Returns a dict name ->
  ``(values, valid, age)`` namedtuple, indexable like the real ``AlignResult``.
* ``voxelize(points, voxel_size=, point_range=, mode=)``: modes ``count`` and
  ``occupancy`` with the shared voxel index rules (``_voxel_grid``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._voxel_grid import grid_spec, voxel_index
from ..resample import resample


class StreamAlignment(NamedTuple):
    values: jax.Array
    valid: jax.Array
    age: jax.Array


def align(streams, query_times, *, out_of_range: str = "clamp"):
    out = {}
    for name, s in streams.items():
        if s.method == "window_mean" or (s.tolerance is not None and s.method != "previous"):
            raise NotImplementedError(f"the TEMPORARY align shim cannot do stream {name!r} "
                                      f"(method {s.method!r}, tolerance {s.tolerance})")
        q = jnp.asarray(query_times) - s.offset
        values, valid = resample(s.values, s.times, q, lengths=s.lengths, method=s.method,
                                 out_of_range=out_of_range, return_valid=True)
        latest = resample(jnp.asarray(s.times)[..., None], s.times, q, lengths=s.lengths,
                          method="previous")[..., 0]
        age = jnp.where(q < jnp.asarray(s.times)[..., :1], jnp.inf, q - latest)
        age = jnp.where(jnp.isnan(q), jnp.nan, age).astype(jnp.float32)
        if s.tolerance is not None:
            valid = valid & (age <= s.tolerance)
        out[name] = StreamAlignment(values, valid, age)
    return out


def voxelize(points, features=None, *, voxel_size, point_range, mode: str = "count",
             lengths=None):
    if features is not None or lengths is not None or mode not in ("count", "occupancy"):
        raise NotImplementedError("the TEMPORARY voxelize shim does count/occupancy only")
    spec = grid_spec(voxel_size, point_range)
    points = jnp.asarray(points)
    lead = points.shape[:-2]
    flat = points.reshape((-1,) + points.shape[-2:])
    _, keep, vid = voxel_index(flat, spec)
    V = spec.num_voxels
    rows = jnp.arange(flat.shape[0])[:, None]
    counts = jnp.zeros((flat.shape[0], V), jnp.int32).at[rows, jnp.where(keep, vid, V)].add(
        1, mode="drop")
    grid = counts if mode == "count" else (counts > 0).astype(jnp.float32)
    return grid.reshape(lead + spec.shape)

