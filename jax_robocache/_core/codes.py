"""Integer codes and limits the ops share with the CUDA kernels.

Defined once, in C++ (``csrc/common/constants.h``), and exported by the CUDA
module (``jax_robocache._robocache_cuda.constants()``). A CPU-only install has
no module, so the package keeps this copy; when the module loads,
``_core/extension.py`` checks it against the module's values and refuses to
register kernels that disagree (``check_against``).
"""

from __future__ import annotations

#: resample / align ``method`` codes.
METHODS = {"linear": 0, "nearest": 1, "previous": 2, "slerp": 3}
#: align's extra method: the mean of a stream's samples in (q - window, q].
WINDOW_MEAN = 4
#: resample / align ``out_of_range`` codes.
OUT_OF_RANGE = {"clamp": 0, "nan": 1, "extrapolate": 2}
#: Most streams one align call takes (one kernel descriptor each).
MAX_STREAMS = 16
#: resample / align: the resolution rule's factor and floor on the mean sample spacing (s)
#: (streams/timestamps.py); kernels and twins treat each query of an unresolved episode as NaN.
RESOLUTION_FACTOR = 4
MIN_SAMPLE_SPACING_S = 1e-6
#: sample_windows ``out_of_range`` codes: align's three plus "zero" (clamp, then 0 where invalid).
WINDOW_OUT_OF_RANGE = {**OUT_OF_RANGE, "zero": 3}
#: sample_windows window kinds (``seconds=`` / ``steps=``).
WINDOW_KINDS = {"time": 0, "index": 1}
#: Most windows one sample_windows call takes (one kernel descriptor each).
MAX_WINDOWS = 16
#: Most deltas (entries K, summed over the windows) one kernel launch takes; a call with
#: more runs the jnp twin.
MAX_WINDOW_ENTRIES = 2048
#: align's ``out_dtype``: value dtype -> the output dtypes the kernel writes it in itself (one
#: rounding of each result); XLA converts any other pair after the kernel.
ALIGN_KERNEL_WRITES = {"float32": ["float32", "bfloat16", "float16"],
                       "float64": ["float32", "float64"],
                       "bfloat16": ["float32", "bfloat16", "float16"],
                       "float16": ["float32", "bfloat16", "float16"]}
#: voxelize ``mode`` codes.
VOXELIZE_MODES = {"count": 0, "occupancy": 1, "sum": 2, "mean": 3, "max": 4}


def exported() -> dict:
    """These values in the layout of the module's ``constants()``."""
    return {"methods": dict(METHODS), "out_of_range": dict(OUT_OF_RANGE),
            "window_mean": WINDOW_MEAN, "max_streams": MAX_STREAMS,
            "resolution_factor": RESOLUTION_FACTOR, "min_sample_spacing_s": MIN_SAMPLE_SPACING_S,
            "voxelize_modes": dict(VOXELIZE_MODES),
            "window_out_of_range": dict(WINDOW_OUT_OF_RANGE), "window_kinds": dict(WINDOW_KINDS),
            "max_windows": MAX_WINDOWS, "max_window_entries": MAX_WINDOW_ENTRIES,
            "align_kernel_writes": {k: list(v) for k, v in ALIGN_KERNEL_WRITES.items()}}


def mismatches(module_constants: dict) -> list[str]:
    """Where the module's ``constants()`` differ from this copy ([] when they agree)."""
    ours = exported()
    found = []
    for key in sorted(set(ours) | set(module_constants)):
        theirs = module_constants.get(key, "<missing>")
        mine = ours.get(key, "<missing>")
        if theirs != mine:
            found.append(f"{key}: CUDA module {theirs!r}, Python {mine!r}")
    return found


def check_against(module) -> str:
    """Why ``module``'s constants make its kernels unusable, or "" when they match this copy."""
    constants = getattr(module, "constants", None)
    if constants is None:
        return ("the CUDA module exports no constants() (built from older sources); rebuild "
                "jax_robocache")
    found = mismatches(dict(constants()))
    if found:
        return ("the CUDA module's codes differ from the Python package's (built from other "
                "sources; rebuild jax_robocache): " + "; ".join(found))
    return ""
