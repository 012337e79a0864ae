"""Builds and runs the host-only check programs of tests/cpp (nvcc, no GPU needed)."""

import pathlib
import shutil
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def build(source: str, tmp_path, *flags: str, timeout: int = 300) -> pathlib.Path:
    """Compiles ``tests/cpp/<source>`` against ``csrc/``; skips the test without nvcc."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found")
    binary = tmp_path / pathlib.Path(source).stem
    done = subprocess.run([nvcc, "-std=c++17", *flags, f"-I{ROOT / 'csrc'}", str(HERE / source),
                           "-o", str(binary)], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return binary


def run(binary: pathlib.Path, *args: str) -> str:
    """The program's stdout; it must exit 0."""
    done = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done.stdout
