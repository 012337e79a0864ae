"""The codes and limits shared with the CUDA kernels: one definition, in C++.

csrc/common/constants.h defines them; the CUDA module exports them
(``constants()``); jax_robocache/_core/codes.py keeps a copy for installs
without the module, which must equal the header's, and the module's when it is
built (otherwise its kernels are not registered).
"""

import pathlib
import re
import types

import pytest

from jax_robocache._core import codes, extension

HEADER = pathlib.Path(__file__).resolve().parents[2] / "csrc" / "common" / "constants.h"


def header_constants() -> dict:
    """constants.h read as the module exports it (names from its NamedCode tables)."""
    text = HEADER.read_text()
    symbols = {name: int(value) for name, value in re.findall(r"\b(k\w+)\s*=\s*(-?\d+)[,;\s]", text)}
    floats = {name: float(value) for name, value in
              re.findall(r"constexpr double (k\w+)\s*=\s*([-+.\deE]+);", text)}

    def table(name):
        body = re.search(rf"\b{name}\[\]\s*=\s*\{{(.*?)\}};", text, re.S)
        assert body, f"{name} not found in {HEADER}"
        pairs = re.findall(r'\{\s*"(\w+)"\s*,\s*(?:\w+::)?(k\w+)\s*\}', body.group(1))
        assert pairs, f"{name} has no entries"
        return {py_name: symbols[symbol] for py_name, symbol in pairs}

    def writes(name, types):
        body = re.search(rf"\b{name}\[4\]\[4\]\s*=\s*\{{(.*?)\}};", text, re.S)
        assert body, f"{name} not found in {HEADER}"
        rows = re.findall(r"\{\s*(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*\}",
                          body.group(1))
        names = sorted(types, key=types.get)  # ElemType order
        assert len(rows) == len(names) == 4, rows
        return {value: [out for out, flag in zip(names, row) if flag == "true"]
                for value, row in zip(names, rows)}

    return {"align_kernel_writes": writes("kAlignKernelWrites", table("kElemTypeNames")),
            "methods": table("kMethodNames"), "out_of_range": table("kOutOfRangeNames"),
            "window_mean": symbols["kWindowMean"], "max_streams": symbols["kMaxStreams"],
            "resolution_factor": symbols["kResolutionFactor"],
            "min_sample_spacing_s": floats["kMinSampleSpacingS"],
            "voxelize_modes": table("kVoxelizeModeNames"),
            "window_out_of_range": table("kWindowOutOfRangeNames"),
            "window_kinds": table("kWindowKindNames"), "max_windows": symbols["kMaxWindows"],
            "max_window_entries": symbols["kMaxWindowEntries"]}


def test_python_copy_equals_the_cpp_header():
    if not HEADER.exists():
        pytest.skip(f"no source tree ({HEADER})")
    assert codes.mismatches(header_constants()) == []


def test_ops_use_the_one_python_copy():
    from jax_robocache._core import contract
    from jax_robocache.streams import align, align_twin
    from jax_robocache.voxels import voxelize

    assert contract.METHODS is codes.METHODS and contract.OUT_OF_RANGE is codes.OUT_OF_RANGE
    assert align.MAX_STREAMS == codes.MAX_STREAMS and align_twin.WINDOW_MEAN == codes.WINDOW_MEAN
    assert align.ALIGN_METHODS == {**codes.METHODS, "window_mean": codes.WINDOW_MEAN}
    assert voxelize.MODES is codes.VOXELIZE_MODES
    from jax_robocache.episodes import windows, windows_twin
    assert windows.WINDOW_OUT_OF_RANGE is codes.WINDOW_OUT_OF_RANGE
    assert windows.MAX_WINDOWS == codes.MAX_WINDOWS
    assert (windows_twin.TIME, windows_twin.INDEX) == (codes.WINDOW_KINDS["time"],
                                                       codes.WINDOW_KINDS["index"])
    assert windows_twin.ZERO_OOR == codes.WINDOW_OUT_OF_RANGE["zero"]


def test_a_module_with_other_codes_is_refused():
    """Kernels built from other sources are not registered, and the reason names the code."""
    other = codes.exported()
    other["voxelize_modes"] = {**other["voxelize_modes"], "mean": 5}
    other["max_streams"] = 8
    reason = codes.check_against(types.SimpleNamespace(constants=lambda: other))
    assert "voxelize_modes" in reason and "max_streams" in reason and "rebuild" in reason
    missing = {k: v for k, v in codes.exported().items() if k != "window_mean"}
    assert "window_mean" in codes.check_against(types.SimpleNamespace(constants=lambda: missing))
    assert "constants()" in codes.check_against(types.SimpleNamespace())
    assert codes.check_against(types.SimpleNamespace(constants=codes.exported)) == ""


def test_built_module_exports_the_same_codes():
    if not extension.STATUS.compiled:
        pytest.skip(f"CUDA module not built ({extension.STATUS.reason})")
    import jax_robocache._robocache_cuda as module

    assert codes.mismatches(dict(module.constants())) == []
    # Registered, unless built against a newer jaxlib than the running one (the GPU tests
    # skip when the kernels are not registered: this is where a refusal shows).
    assert extension.STATUS.registered or "compiled against jaxlib" in extension.STATUS.reason, (
        extension.STATUS.reason)
