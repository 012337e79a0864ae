"""Warnings for voxel outputs far larger than their input could fill.

The output shapes of ``voxelize`` and ``points_to_voxels`` come from static
arguments (the grid, ``max_voxels``, ``max_points_per_voxel``), not from the
points, so a unit slip (a voxel size in centimetres) or a copied config
(``max_voxels=10**7`` for 1000 points) silently allocates gigabytes. At trace
time (once per compilation) these warn with ``OversizedOutputWarning``:

* ``points_to_voxels``: when ``max_voxels > 8 * N`` (a row needs a point of
  its own, so at most N of the M rows can ever be used: more than 7/8 of the
  output is always empty) and the outputs take at least 256 MiB.
* ``voxelize``: when the grid has more than 1024 voxels per input point
  (X * Y * Z > 1024 * N: at most 1/1024 of the voxels can be non-zero) and
  the output takes at least 256 MiB.

Sizes count the whole batch. Silence with ``warnings.filterwarnings("ignore",
category=jax_robocache.voxels.OversizedOutputWarning)`` where the size is
meant.
"""

from __future__ import annotations

import warnings

#: Outputs below this size never warn (bytes).
WARN_BYTES = 256 * 2**20
#: points_to_voxels warns above this many rows per input point.
ROWS_PER_POINT = 8
#: voxelize warns above this many voxels per input point.
VOXELS_PER_POINT = 1024


class OversizedOutputWarning(UserWarning):
    """A voxel output much larger than its input can fill (see ``jax_robocache.voxels.sizing``)."""


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.2f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


def warn_points_to_voxels(batch: int, N: int, M: int, P: int, width: int) -> None:
    """``width``: 3 + C floats per slot. Warns per the rule in the module docstring."""
    nbytes = batch * (M * P * width * 4 + M * 3 * 4 + M * 4 + 4 + N * 4)
    if M > ROWS_PER_POINT * N and nbytes >= WARN_BYTES:
        warnings.warn(
            f"points_to_voxels: max_voxels={M} rows of max_points_per_voxel={P} slots for "
            f"clouds of N={N} points build {_gib(nbytes)} of outputs, but at most {N} rows per "
            f"cloud can ever hold a point (each row needs a point of its own). Use "
            f"max_voxels <= N (or the largest voxel count you expect).",
            OversizedOutputWarning, stacklevel=3)


def warn_voxelize(batch: int, N: int, grid_shape: tuple, channels: int, itemsize: int) -> None:
    """``channels``: C (1 for count / occupancy). Warns per the rule in the module docstring."""
    voxels = 1
    for d in grid_shape:
        voxels *= d
    nbytes = batch * voxels * channels * itemsize
    if voxels > VOXELS_PER_POINT * N and nbytes >= WARN_BYTES:
        warnings.warn(
            f"voxelize: a grid of {grid_shape} = {voxels} voxels for clouds of N={N} points "
            f"builds {_gib(nbytes)} of output, of which at most {N} voxels per cloud can be "
            "non-zero. Check voxel_size and point_range (same units as the points?).",
            OversizedOutputWarning, stacklevel=3)
