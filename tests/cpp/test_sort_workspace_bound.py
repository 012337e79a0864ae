"""SortTempBound (csrc/common/workspace.h) bounds cub's radix-sort temporary storage.

points_to_voxels sizes its workspace at lowering time with that bound, before
any GPU is involved; check_sort_workspace_bound.cu compares it with cub's own
size query for every tuning policy (sm_75 ... sm_120), 32/64-bit keys and
offsets and sizes up to 2e9 items. The program needs no GPU, but compiling it
for seven architectures takes minutes: it runs where nvcc is found and either
a GPU is present (the device run) or ROBOCACHE_CPP_TESTS=1 is set.
"""

import os
import pathlib
import shutil
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ARCHS = (75, 80, 86, 89, 90, 100, 120)  # the PTX versions the program queries


def _gpu_present() -> bool:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        return subprocess.run([smi, "-L"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def test_sort_temp_bound_covers_cub(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found")
    if not (os.environ.get("ROBOCACHE_CPP_TESTS") == "1" or _gpu_present()):
        pytest.skip("no GPU here (set ROBOCACHE_CPP_TESTS=1 to run it anyway)")
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
