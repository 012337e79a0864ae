"""SortTempBound (csrc/common/workspace.h) bounds cub's radix-sort temporary storage.

points_to_voxels sizes its workspace at lowering time with that bound, before
any GPU is involved; check_sort_workspace_bound.cu compares it with cub's own
size query for every tuning policy (sm_75 ... sm_120), 32/64-bit keys and
offsets and sizes up to 2e9 items. The program needs nvcc but no GPU; compiling
it for seven architectures takes minutes (4 on two CPU cores), too long for
the default test run (CI, the device run's test timeout), so it runs only with
ROBOCACHE_CPP_TESTS=1: do so after a CUDA/CCCL upgrade or a change of
SortTempBound or of points_to_voxels' sort:

    ROBOCACHE_CPP_TESTS=1 python -m pytest -q tests/cpp
"""

import os
import pathlib
import shutil
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ARCHS = (75, 80, 86, 89, 90, 100, 120)  # the PTX versions the program queries


def test_sort_temp_bound_covers_cub(tmp_path):
    if os.environ.get("ROBOCACHE_CPP_TESTS") != "1":
        pytest.skip("minutes of nvcc: set ROBOCACHE_CPP_TESTS=1 to run it")
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found")
    binary = tmp_path / "check_bound"
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in ARCHS]
    build = subprocess.run(
        [nvcc, "-std=c++17", "--threads", "0", *gencode, f"-I{ROOT / 'csrc'}",
         str(HERE / "check_sort_workspace_bound.cu"), "-o", str(binary)],
        capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "violations 0" in run.stdout, run.stdout
