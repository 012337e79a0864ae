"""The two ops the demo needs besides ``resample``: ``align`` and ``voxelize``.

The demo calls ``jax_robocache.align`` and ``jax_robocache.voxelize``. TEMPORARY:
until both are merged into main (issues 3 and 4) an op that is missing is taken
from ``_compat_shim.py``; delete the two ``except`` branches with that file.
"""

from __future__ import annotations

try:
    from jax_robocache import align
except ImportError:  # TEMPORARY (issue 3 not merged yet)
    from ._compat_shim import align

try:
    from jax_robocache import voxelize
except ImportError:  # TEMPORARY (issue 4 not merged yet)
    from ._compat_shim import voxelize

#: Which ops come from the TEMPORARY shim (printed by the demo, empty once merged).
SHIMMED = tuple(name for name, fn in (("align", align), ("voxelize", voxelize))
                if fn.__module__.endswith("_compat_shim"))

__all__ = ["SHIMMED", "align", "voxelize"]
