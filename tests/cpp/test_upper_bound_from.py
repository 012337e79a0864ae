"""UpperBoundFrom (csrc/streams/interp_plan.cuh), sample_windows' search on the GPU, finds
UpperBound's index on sorted times from any guess, and stays in [0, n] on unsorted ones.

check_upper_bound_from.cu runs both searches on the host over ~10 M queries (float32 and
float64 stamps with repeats, jitter, dropouts, +-inf; queries at stamps, between them, past
the ends, NaN). Host code only, one compile of a few seconds: needs nvcc, not a GPU.
"""

import pathlib
import shutil
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def test_upper_bound_from_equals_bisection(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found")
    binary = tmp_path / "check_upper_bound_from"
    build = subprocess.run(
        [nvcc, "-std=c++17", f"-I{ROOT / 'csrc'}", str(HERE / "check_upper_bound_from.cu"),
         "-o", str(binary)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "violations 0" in run.stdout, run.stdout
