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

import pytest

from nvcc_build import build, run

ARCHS = (75, 80, 86, 89, 90, 100, 120)  # the PTX versions the program queries


def test_sort_temp_bound_covers_cub(tmp_path):
    if os.environ.get("ROBOCACHE_CPP_TESTS") != "1":
        pytest.skip("minutes of nvcc: set ROBOCACHE_CPP_TESTS=1 to run it")
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in ARCHS]
    out = run(build("check_sort_workspace_bound.cu", tmp_path, "--threads", "0", *gencode,
                    timeout=900))
    assert "violations 0" in out, out
