"""points_to_voxels: CUDA FFI kernel vs our jnp twin on the same GPU, in-graph device time.

Usage: python benchmarks/bench_points_to_voxels.py [--out results.json] [--quick] [--smoke]

Cases (issue #5), on synthetic spinning-LiDAR clouds (64 rings, ground plane and
obstacles, the rear half outside the range as in KITTI), features = intensity (C = 1):
  * KITTI-like voxels: range (0, -40, -3) .. (70.4, 40, 1) m at 0.05 x 0.05 x 0.1 m
    (1408 x 1600 x 40 cells), max_voxels 40000, P = 32; 250k and 1M points.
    Goal: 250k points in <= 0.2 ms.
  * PointPillars: range (0, -39.68, -3) .. (69.12, 39.68, 1) m, 0.16 m pillars
    (432 x 496 x 1), 12000 pillars, P = 32; 250k points.
``--smoke`` shrinks every case (for a CPU run of the script itself).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import subprocess
import sys

import jax
import jaxlib
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import timing  # noqa: E402

import jax_robocache  # noqa: E402
from jax_robocache import points_to_voxels  # noqa: E402

KITTI = dict(voxel_size=(0.05, 0.05, 0.1), point_range=(0.0, -40.0, -3.0, 70.4, 40.0, 1.0),
             max_voxels=40000, max_points_per_voxel=32)
PILLARS = dict(voxel_size=(0.16, 0.16, 4.0), point_range=(0.0, -39.68, -3.0, 69.12, 39.68, 1.0),
               max_voxels=12000, max_points_per_voxel=32)
CASES = {
    "kitti_250k": dict(N=250_000, setup=KITTI),
    "kitti_1m": dict(N=1_000_000, setup=KITTI),
    "pillars_250k": dict(N=250_000, setup=PILLARS),
}
TARGET = "robocache_points_to_voxels"


def lidar_cloud(rng, N, rings=64, height=1.73, max_range=80.0):
    """A spinning-LiDAR-like cloud: N returns over `rings` beams, ground plane and obstacles."""
    elev = np.deg2rad(np.linspace(-24.8, 2.0, rings))[rng.integers(0, rings, N)]
    azim = rng.uniform(-np.pi, np.pi, N)
    ground = np.where(elev < 0, height / np.maximum(np.sin(-elev), 1e-6), np.inf)
    obstacle = np.where(rng.random(N) < 0.4, rng.gamma(2.0, 8.0, N) + 2.0, np.inf)
    r = np.minimum(np.minimum(ground, obstacle), max_range) + rng.normal(0, 0.02, N)
    xyz = np.stack([r * np.cos(elev) * np.cos(azim), r * np.cos(elev) * np.sin(azim),
                    r * np.sin(elev)], axis=-1)
    intensity = rng.uniform(0, 1, (N, 1))
    return xyz.astype(np.float32), intensity.astype(np.float32)


def min_bytes(N, C, setup):
    """Fewest bytes: read points and features, write every output once."""
    M, P = setup["max_voxels"], setup["max_points_per_voxel"]
    return N * (3 + C) * 4 + M * P * (3 + C) * 4 + M * 3 * 4 + M * 4 + 4 + N * 4


def git_sha():
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"],
                                       cwd=os.path.dirname(__file__), text=True).strip()
    except Exception:  # noqa: BLE001
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CPU check)")
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    repeats = 3 if args.quick or args.smoke else 7
    if args.smoke:
        timing.UNROLL = 2  # compile time dominates a CPU smoke run

    dev = jax.devices()[0]
    stamp = {"device": dev.device_kind, "platform": dev.platform, "jax": jax.__version__,
             "jaxlib": jaxlib.__version__,
             "jax_robocache": jax_robocache.__version__, "git": git_sha(),
             "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "host": platform.node(), "info": jax_robocache.info()}
    copy_bw = timing.copy_bandwidth(
        nbytes=(1 << 30) if jax.default_backend() == "gpu" else (64 << 20), repeats=repeats)
    print(f"# {stamp['device']} jax {stamp['jax']} {stamp['date']} copy bandwidth "
          f"{copy_bw / 1e12:.2f} TB/s (read+write)")
    print("| case | N | voxels used / max | kernel us | jnp us | speedup | % of copy bw |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    rows = []
    for name in args.cases.split(","):
        case = CASES[name]
        setup = dict(case["setup"])
        N = case["N"]
        if args.smoke:
            N = N // 500
            setup["max_voxels"] //= 100
        points, features = lidar_cloud(rng, N)
        fn = functools.partial(points_to_voxels, **setup)
        operands = [points, features]
        out = jax.jit(fn)(*operands)
        used = int(out.num_voxels)
        kept = int((np.asarray(out.point_to_voxel) >= 0).sum())
        kernel = timing.time_in_graph(fn, operands, feed=0, repeats=repeats)
        uses_kernel = TARGET in jax.jit(fn).lower(*operands).as_text()
        os.environ["JAX_ROBOCACHE_FORCE_JNP"] = "1"
        twin = timing.time_in_graph(fn, operands, feed=0, repeats=repeats)
        assert TARGET not in jax.jit(fn).lower(*operands).as_text(), \
            "JAX_ROBOCACHE_FORCE_JNP did not take effect"
        twin_out = jax.jit(fn)(*operands)
        del os.environ["JAX_ROBOCACHE_FORCE_JNP"]
        identical = all(np.array_equal(np.asarray(a).view(np.uint32) if a.dtype == np.float32
                                       else np.asarray(a),
                                       np.asarray(b).view(np.uint32) if b.dtype == np.float32
                                       else np.asarray(b))
                        for a, b in zip(out, twin_out))
        moved = int((np.asarray(out.point_to_voxel) != np.asarray(twin_out.point_to_voxel)).sum())
        k, j = timing.summarize(kernel), timing.summarize(twin)
        nbytes = min_bytes(N, 1, setup)
        row = dict(case=name, N=N, **{key: setup[key] for key in setup}, voxels_used=used,
                   points_kept=kept, bytes=nbytes, kernel=k, jnp=j, uses_kernel=uses_kernel,
                   kernel_equals_twin=identical, points_assigned_differently=moved, speedup=j["median"] / k["median"],
                   bw_fraction=nbytes / k["median"] / copy_bw)
        rows.append(row)
        print(f"| {name} | {N} | {used} / {setup['max_voxels']} | {k['median'] * 1e6:.1f} | "
              f"{j['median'] * 1e6:.1f} | {row['speedup']:.1f}x | "
              f"{100 * row['bw_fraction']:.0f}% |"
              + ("" if identical else f" MISMATCH vs twin ({moved} points)"))
    result = {"stamp": stamp, "copy_bandwidth": copy_bw, "rows": rows}
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1, default=str)
    return result


if __name__ == "__main__":
    main()
