"""Every op is bitwise deterministic across repeated calls and across processes.

Two fresh processes (determinism_worker.py) compute every op (every
resample method, align with every method, every voxelize mode,
points_to_voxels: the large cases of the ops' catalogues) twice on the same
random inputs; all outputs must be
byte-identical between the calls and between the processes. On CPU always; on
the GPU (the CUDA kernels) when one is present.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import jax_robocache

WORKER = Path(__file__).parent / "determinism_worker.py"


def run_workers(platform, seed, tmp_path, count=2):
    package_root = str(Path(jax_robocache.__file__).resolve().parents[1])  # the one under test
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(  # the worker imports tests/golden_cases
        [package_root, str(WORKER.parents[1]), os.environ.get("PYTHONPATH", "")]))
    if platform == "gpu":  # two processes on one GPU: no preallocation of most of its memory
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    else:
        env["JAX_PLATFORMS"] = "cpu"
    paths = [tmp_path / f"run{k}.npz" for k in range(count)]
    procs = [subprocess.Popen([sys.executable, str(WORKER), platform, str(seed), str(p)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for p in paths]
    logs = []
    for p in procs:
        try:
            logs.append(p.communicate(timeout=300)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    runs = []
    for path in paths:
        with np.load(path) as data:
            runs.append({k: data[k] for k in data.files})
    return runs, logs


def assert_bitwise_equal(a, b, what):
    assert a.dtype == b.dtype and a.shape == b.shape, (what, a.dtype, b.dtype, a.shape, b.shape)
    if a.tobytes() != b.tobytes():
        differ = np.flatnonzero(a.view(np.uint8).ravel() != b.view(np.uint8).ravel())
        raise AssertionError(f"{what}: {differ.size} bytes differ (first at byte {differ[0]})")


def test_bitwise_identical_across_calls_and_processes(platform, rng, tmp_path):
    seed = int(rng.integers(2**31))
    (first, second), logs = run_workers(platform, seed, tmp_path)
    if platform == "gpu":
        assert "'jnp'" not in logs[0], f"an op fell back to its jnp twin on the GPU: {logs[0]}"
    calls = sorted(k for k in first if not k.endswith("@repeat"))
    ops = {k.split("/")[0].split("_")[0] for k in calls}
    assert {"resample", "align", "voxelize", "points"} <= ops, ops
    assert sorted(first) == sorted(second)
    for key in calls:
        assert_bitwise_equal(first[key], first[f"{key}@repeat"], f"{key}: repeated call")
        assert_bitwise_equal(first[key], second[key], f"{key}: second process")
