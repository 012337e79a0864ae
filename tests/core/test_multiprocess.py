"""examples/multi_gpu.py as two jax.distributed processes on localhost (CPU devices)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax_robocache

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multi_gpu.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_on_localhost():
    port = free_port()
    package_root = str(Path(jax_robocache.__file__).resolve().parents[1])  # the one under test
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--platform", "cpu", "--coordinator", f"127.0.0.1:{port}",
         "--num-processes", "2", "--process-id", str(i)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)]
    outputs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        outputs.append(out)
    for i, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"process {i} failed:\n{out[-3000:]}"
        assert "collectives in HLO: none" in out and "of 4 devices" in out, out[-2000:]
