"""Soak: call every op many times with varying shapes; host and device memory must stay flat.

Usage: python scripts/soak.py [--calls 100000]. Shapes cycle through the
workload set of gpu_workload.py (compiled once each), so after a warm-up
pass any growth of host RSS or device bytes-in-use is a leak. Prints a table
of samples and exits non-zero when memory grew by more than the tolerance.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from gpu_workload import workloads  # noqa: E402


def host_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def device_mb() -> float:
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("bytes_in_use", float("nan")) / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--tolerance-mb", type=float, default=64.0)
    args = parser.parse_args()
    items = list(workloads(np.random.default_rng(0)))
    for _, fn, ops in items:  # warm-up: compile every shape once
        jax.block_until_ready(fn(*ops))
    base_host, base_dev = host_rss_mb(), device_mb()
    rows, start, every = [], time.time(), max(args.calls // args.samples, 1)
    for i in range(args.calls):
        name, fn, ops = items[i % len(items)]
        out = fn(*ops)
        if (i + 1) % every == 0:
            jax.block_until_ready(out)
            rows.append((i + 1, host_rss_mb(), device_mb(), time.time() - start))
    print(f"{'calls':>8} {'host MB':>9} {'device MB':>10} {'seconds':>8}")
    print(f"{'warm':>8} {base_host:9.1f} {base_dev:10.1f} {0:8.1f}")
    for r in rows:
        print(f"{r[0]:8d} {r[1]:9.1f} {r[2]:10.1f} {r[3]:8.1f}")
    grow_host = rows[-1][1] - rows[0][1]
    grow_dev = rows[-1][2] - rows[0][2] if np.isfinite(base_dev) else 0.0
    ok = grow_host <= args.tolerance_mb and grow_dev <= args.tolerance_mb
    print(f"{args.calls} calls over {len(items)} shapes on {jax.devices()[0].device_kind}: "
          f"host +{grow_host:.1f} MB, device +{grow_dev:.1f} MB after the first sample -> "
          f"{'flat' if ok else 'GROWING'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
