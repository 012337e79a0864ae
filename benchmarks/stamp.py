"""Where and what a benchmark ran on: device, driver, versions, git SHA, date."""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
import sys

import jax
import jaxlib
import numpy as np

GIT_SHA_ENV = "ROBOCACHE_GIT_SHA"


def _quiet(cmd: list[str], cwd: str | None = None) -> str | None:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=20,
                              check=True).stdout.strip() or None
    except Exception:  # noqa: BLE001  (missing tool, no repository, ...)
        return None


def git_sha(override: str | None = None) -> str:
    """--git-sha, else $ROBOCACHE_GIT_SHA, else `git rev-parse` (+ "-dirty"), else "unknown".

    The GPU machine gets the tree without .git: pass the SHA from where it was copied.
    """
    if override or os.environ.get(GIT_SHA_ENV):
        return override or os.environ[GIT_SHA_ENV]
    here = os.path.dirname(os.path.abspath(__file__))
    sha = _quiet(["git", "rev-parse", "--short=12", "HEAD"], cwd=here)
    if sha is None:
        return "unknown"
    dirty = _quiet(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here)
    return sha + ("-dirty" if dirty else "")


def gpu_driver() -> str | None:
    """``name, driver`` of the first GPU from nvidia-smi, or None without one."""
    if not shutil.which("nvidia-smi"):
        return None
    out = _quiet(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"])
    return out.splitlines()[0].strip() if out else None


def torch_version() -> str | None:
    import baselines
    torch = baselines.torch_module()
    if torch is None:
        return None
    cuda = torch.version.cuda if torch.cuda.is_available() else "no GPU"
    return f"{torch.__version__} (CUDA {cuda})"


def collect(git_override: str | None = None) -> dict:
    import harness
    import jax_robocache
    dev = harness.current_device()
    smi = gpu_driver()
    return {
        "device": dev.device_kind, "platform": dev.platform, "device_count": jax.device_count(),
        "driver": smi.split(",")[-1].strip() if smi else None, "nvidia_smi": smi,
        "jax": jax.__version__, "jaxlib": jaxlib.__version__,
        "jax_robocache": jax_robocache.__version__, "git": git_sha(git_override),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(), "python": sys.version.split()[0], "numpy": np.__version__,
        "torch": torch_version(), "info": jax_robocache.info(),
    }


def one_line(stamp: dict) -> str:
    return (f"{stamp['device']} ({stamp['platform']}, driver {stamp['driver'] or 'n/a'}) "
            f"jax {stamp['jax']} jaxlib {stamp['jaxlib']} git {stamp['git']} {stamp['date']}")
