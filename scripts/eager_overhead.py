"""Where the time of a standalone (eager) op call goes, against a jitted jnp function.

For each op (``resample``, ``align``, ``voxelize``, ``points_to_voxels``) on
small device-resident inputs (the device work is negligible next to Python):

* ``eager``: the median wall time of one standalone call, ``op(...)`` from
  Python until the result is ready (``block_until_ready``);
* ``jitted twin``: the same for ``jax.jit`` of the op's jnp twin on the same
  (canonical) operands: the dispatch time of an equivalent jitted jnp function
  of the same shapes, what a user's own jitted code costs per call;
* ``jitted op``: the same for ``jax.jit`` of the op's primitive alone on those operands
  (our kernel on GPU): the floor of an eager call, so eager - jitted op is the Python side;
* ``ratio``: eager / jitted twin (issue 19's goal: <= 1.5), of the medians and of the
  minima (the minimum is the figure least disturbed by other processes);
* with ``--xla-defaults``: eager programs compiled with XLA's default options (CUDA
  graphs on), to measure what ``_core.eager.EAGER_COMPILER_OPTIONS`` is worth;
* with ``--profile``: the cProfile of 200 eager calls, the top functions by
  cumulative time (argument checks, timestamp guard, canonical reshapes, bind);
* the read-back floor: a jitted program until ready, against the same program also
  returning an ``[8]`` flag that is read back with ``np.asarray``. An eager call of an op
  with timestamps reads its resolution flags back (its eager error), so on a device its
  floor is the dispatch plus that read-back.

Usage: ``python scripts/eager_overhead.py [--repeats 300] [--profile]``. Run
on an idle machine for stable numbers; the load average is printed.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import os
import pstats
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("jax_robocache") is None:  # not installed: this checkout's
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # the harness's wall-clock timer

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jax_robocache as rc  # noqa: E402
from timing import wall  # noqa: E402
from jax_robocache.streams.resample_twin import resample_twin  # noqa: E402
from jax_robocache.voxels.points_to_voxels_twin import points_to_voxels_twin  # noqa: E402
from jax_robocache.voxels.voxelize_twin import voxelize_twin  # noqa: E402


def _call_s(fn, repeats):
    """(median, minimum) seconds of one call until its result is ready (two warm-up calls
    compile and fill the caches)."""
    samples = wall(fn, repeats, warmup=2)
    return float(np.median(samples)), float(np.min(samples))


def _captured_twin(op_name, call):
    """The primitive's operands and params of one eager call (captured at bind, with the
    array work run step by step so that the operands are concrete)."""
    from jax_robocache._core import primitive
    try:
        from jax_robocache._core import eager
    except ImportError:  # a tree from before staged eager calls (for a before/after table)
        eager = None
    op = primitive.REGISTRY[op_name]
    if eager is not None:
        name = "is_traced" if hasattr(eager, "is_traced") else "_is_traced"  # older trees
        traced = getattr(eager, name)
        setattr(eager, name, lambda arrays: True)
    seen = {}
    original = op.bind

    def spy(*args, **params):
        seen.setdefault("args", args)
        seen.setdefault("params", params)
        return original(*args, **params)
    op.bind = spy
    try:
        jax.block_until_ready(call())
    finally:
        del op.bind
        if eager is not None:
            setattr(eager, name, traced)
    return seen["args"], seen["params"]


def cases(rng):
    B, S, D, T = 8, 250, 128, 125
    values = jnp.asarray(rng.normal(size=(B, S, D)), jnp.float32)
    times = jnp.asarray(np.cumsum(rng.uniform(0.01, 0.03, (B, S)), axis=1), jnp.float32)
    query = jnp.asarray(np.sort(rng.uniform(0, 4, (B, T)), axis=1), jnp.float32)
    yield "resample 8x250x128->125", "resample", lambda: rc.resample(values, times, query), \
        resample_twin
    cam = rc.Stream(values[:, :, :16], times, method="nearest")
    joints = rc.Stream(values[:, :, :32], times + 0.005)
    yield "align 2 streams 8x250->125", "align", \
        lambda: rc.align({"cam": cam, "joints": joints}, query), None
    pts = jnp.asarray(rng.uniform(-1.1, 1.1, (1, 4000, 3)), jnp.float32)
    feats = jnp.asarray(rng.normal(size=(1, 4000, 4)), jnp.float32)
    grid = dict(voxel_size=2 / 16, point_range=(-1, -1, -1, 1, 1, 1))
    yield "voxelize mean 4000 -> 16^3", "voxelize", \
        lambda: rc.voxelize(pts, feats, mode="mean", **grid), voxelize_twin
    cloud, intensity = pts[0], feats[0, :, :1]
    yield "points_to_voxels 4000, M=300", "points_to_voxels", \
        lambda: rc.points_to_voxels(cloud, intensity, max_voxels=300,
                                    max_points_per_voxel=4, **grid), points_to_voxels_twin


def readback_floor(repeats):
    """(program until ready, program + read-back of an [8] flag): (median, min) seconds."""
    x = jnp.ones((8, 250, 128), jnp.float32)
    program = jax.jit(lambda x: x * 2)
    flagged = jax.jit(lambda x: (x * 2, jnp.any(x < 0, axis=(1, 2))))
    return (_call_s(lambda: program(x), repeats),
            _call_s(lambda: np.asarray(flagged(x)[1]), repeats))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--xla-defaults", action="store_true")
    args = parser.parse_args(argv)
    if args.xla_defaults:
        from jax_robocache._core import eager
        eager.EAGER_COMPILER_OPTIONS = {}
        eager._jitted.cache_clear()
    rng = np.random.default_rng(0)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}"
          f"{' (eager programs with XLA defaults)' if args.xla_defaults else ''}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; median of {args.repeats} calls")
    print("| call | eager median (us) | jitted op median (us) | jitted twin median (us) | ratio "
          "| eager min (us) | jitted twin min (us) | ratio of minima |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    profiles = []
    for label, op_name, call, _ in cases(rng):
        operands, params = _captured_twin(op_name, call)
        from jax_robocache._core import primitive
        op = primitive.REGISTRY[op_name]
        jitted = jax.jit(lambda *a, _p=params, _t=op.twin: _t(*a, **_p))
        bound = jax.jit(lambda *a, _p=params, _o=op: _o.bind(*a, **_p))
        # interleaved halves: a load spike hits every side alike
        e1, b1, o1, e2, b2, o2 = (_call_s(f, args.repeats // 2) for f in
                                  (call, lambda: jitted(*operands),
                                   lambda: bound(*operands)) * 2)
        eager = (np.mean([e1[0], e2[0]]), min(e1[1], e2[1]))
        base = (np.mean([b1[0], b2[0]]), min(b1[1], b2[1]))
        op_median = np.mean([o1[0], o2[0]])
        print(f"| {label} | {eager[0] * 1e6:.0f} | {op_median * 1e6:.0f} | {base[0] * 1e6:.0f} | "
              f"{eager[0] / base[0]:.2f} | {eager[1] * 1e6:.0f} | {base[1] * 1e6:.0f} | "
              f"{eager[1] / base[1]:.2f} |", flush=True)
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(200):
                jax.block_until_ready(call())
            prof.disable()
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(
                r"jax_robocache", 18)
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
            profiles.append((label, out.getvalue()))
    (ready, ready_min), (back, back_min) = readback_floor(args.repeats)
    print(f"\nread-back floor: a jitted program until ready {ready * 1e6:.0f} us (min "
          f"{ready_min * 1e6:.0f}); the same program with an [8] flag read back by np.asarray "
          f"{back * 1e6:.0f} us (min {back_min * 1e6:.0f})")
    for label, text in profiles:
        print(f"\n## cProfile, 200 eager calls: {label}\n")
        lines = [l for l in text.splitlines() if l.strip() and "function calls" not in l]
        print("\n".join(lines))


if __name__ == "__main__":
    main()
