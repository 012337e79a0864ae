"""align / fuse_multimodal: one CUDA launch for all streams vs the jnp twin, in-graph device time.

Usage: python benchmarks/bench_align.py [--out results.json] [--quick] [--cpu-smoke]

Cases (issue #3): B=256 episodes of 5 s with vision 150 x 512 (bfloat16, 30 Hz),
proprio 2500 x 14 (float32, 500 Hz) and force 5000 x 6 (float32, 1 kHz), all
linearly interpolated onto 250 targets (50 Hz) and onto a training-style clock
of T=50 (10 Hz), concatenated to [B, T, 532] float32 (``fuse_multimodal``).
Goal: >= 12x faster than the jnp twin (``JAX_ROBOCACHE_FORCE_JNP=1``) on the
same GPU. Also timed: three ``resample`` calls + an XLA concatenation (what one
would write without align; with the kernels, and forced jnp: a second baseline),
and a mixed case (linear vision with a tolerance, previous-sample proprio, 20 ms
window_mean force). ``--cpu-smoke``
runs every case at B=4 on any backend (both columns are then the jnp twin).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import timing  # noqa: E402

import jax_robocache  # noqa: E402
from jax_robocache import Stream, align, fuse_multimodal, resample  # noqa: E402

STREAMS = {"vision": (150, 512, "bfloat16"), "proprio": (2500, 14, "float32"),
           "force": (5000, 6, "float32")}  # samples per 5 s episode, features, dtype
CASES = {
    "fuse_T250": dict(B=256, T=250, kind="fuse"),
    "fuse_T50": dict(B=256, T=50, kind="fuse"),
    "mixed_T250": dict(B=256, T=250, kind="mixed"),
}
EPISODE_S = 5.0
ORDER = ("vision", "proprio", "force")


def make_inputs(rng, B, T):
    """Per stream jittered clocks over one 5 s episode each, and sorted targets inside them."""
    operands = []
    for S, D, dtype in STREAMS.values():
        gaps = rng.uniform(0.5, 1.5, (B, S)) * (EPISODE_S / S)
        times = np.cumsum(gaps, axis=1).astype(np.float32)
        values = jnp.asarray(rng.normal(size=(B, S, D)).astype(np.float32)).astype(dtype)
        operands += [values, times]
    lo = max(np.asarray(t)[:, 0].max() for t in operands[1::2])
    hi = min(np.asarray(t)[:, -1].min() for t in operands[1::2])
    targets = np.sort(rng.uniform(lo, hi, (B, T)), axis=1).astype(np.float32)
    return operands + [targets]


def fuse(v, vt, p, pt, f, ft, q):
    return fuse_multimodal(v, vt, p, pt, f, ft, q)


def mixed(v, vt, p, pt, f, ft, q):
    streams = {"vision": Stream(v, vt, tolerance=0.1), "proprio": Stream(p, pt, method="previous",
                                                                         tolerance=0.01),
               "force": Stream(f, ft, method="window_mean", window=0.02)}
    out = align(streams, q, concatenate=ORDER)
    return out.concatenated(), out.all_valid()


def three_resamples(v, vt, p, pt, f, ft, q):
    parts = [resample(x, t, q).astype(jnp.float32) for x, t in ((v, vt), (p, pt), (f, ft))]
    return jnp.concatenate(parts, axis=-1)


def bytes_moved(operands):
    """Fewest bytes: referenced value rows (both neighbours), targets, output, valid and age."""
    *pairs, q = operands
    q = np.asarray(q)
    B, T = q.shape
    total = q.size * 4
    width = 0
    for values, times in zip(pairs[0::2], pairs[1::2]):
        times = np.asarray(times)
        S, D = values.shape[1:]
        rows = 0
        for b in range(B):
            i = np.clip(np.searchsorted(times[b], q[b], side="right") - 1, 0, S - 1)
            rows += len(np.union1d(i, np.minimum(i + 1, S - 1)))
        total += rows * D * jnp.dtype(values.dtype).itemsize + B * T * 5  # + valid, age
        width += D
    return total + B * T * width * 4  # float32 concatenated output


def custom_calls(fn, operands) -> int:
    return jax.jit(fn).lower(*operands).as_text().count("robocache_align")


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
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="B=4 and few repeats: checks the script anywhere")
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    smoke = args.cpu_smoke
    repeats = 2 if smoke else (3 if args.quick else 7)
    if smoke:
        timing.UNROLL = 2  # compile time: every loop iteration inlines UNROLL calls

    dev = jax.devices()[0]
    stamp = {"device": dev.device_kind, "platform": dev.platform, "jax": jax.__version__,
             "jaxlib": jaxlib.__version__, "jax_robocache": jax_robocache.__version__,
             "git": git_sha(), "host": platform.node(), "info": jax_robocache.info(),
             "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    gpu = jax.default_backend() == "gpu"
    copy_bw = timing.copy_bandwidth(nbytes=(1 << 30) if gpu else (16 << 20), repeats=repeats)
    print(f"# {stamp['device']} jax {stamp['jax']} {stamp['date']} copy bandwidth "
          f"{copy_bw / 1e12:.2f} TB/s (read+write)")
    rng = np.random.default_rng(0)
    rows = []
    for name in args.cases.split(","):
        case = dict(CASES[name])
        if smoke:
            case["B"] = 4
        fn = fuse if case["kind"] == "fuse" else mixed
        operands = make_inputs(rng, case["B"], case["T"])
        feed = len(operands) - 1  # the targets carry the loop dependency
        calls = custom_calls(fn, operands)
        if gpu and jax_robocache.info()["ops"]["align"] == "cuda-ffi":
            assert calls == 1, f"{name}: expected ONE robocache_align custom call, got {calls}"
        kernel = timing.time_in_graph(fn, operands, feed=feed, repeats=repeats)
        separate = twin_separate = None
        if case["kind"] == "fuse":
            separate = timing.time_in_graph(three_resamples, operands, feed=feed, repeats=repeats)
        os.environ["JAX_ROBOCACHE_FORCE_JNP"] = "1"
        try:
            assert custom_calls(fn, operands) == 0, "JAX_ROBOCACHE_FORCE_JNP did not take effect"
            twin = timing.time_in_graph(fn, operands, feed=feed, repeats=repeats)
            if case["kind"] == "fuse":  # the jnp code one would write without align
                twin_separate = timing.time_in_graph(three_resamples, operands, feed=feed,
                                                     repeats=repeats)
        finally:
            del os.environ["JAX_ROBOCACHE_FORCE_JNP"]
        nbytes = bytes_moved(operands)
        k, j = timing.summarize(kernel), timing.summarize(twin)
        sep = None if separate is None else timing.summarize(separate)
        jsep = None if twin_separate is None else timing.summarize(twin_separate)
        row = dict(case=name, **case, bytes=nbytes, kernel=k, jnp=j, three_resamples=sep,
                   jnp_three_resamples=jsep, custom_calls=calls,
                   speedup=j["median"] / k["median"],
                   speedup_vs_jnp_three_resamples=None if jsep is None
                   else jsep["median"] / k["median"],
                   kernel_bw=nbytes / k["median"], bw_fraction=nbytes / k["median"] / copy_bw)
        rows.append(row)
        extra = "" if sep is None else (
            f"  | 3x resample+concat: kernels {sep['median'] * 1e6:8.1f} us, jnp "
            f"{jsep['median'] * 1e6:9.1f} us ({row['speedup_vs_jnp_three_resamples']:.1f}x)")
        print(f"{name:11s} B={case['B']:3d} T={case['T']:3d}  align {k['median'] * 1e6:8.1f} us  "
              f"jnp twin {j['median'] * 1e6:9.1f} us  speedup {row['speedup']:6.1f}x  "
              f"{row['kernel_bw'] / 1e12:5.2f} TB/s ({100 * row['bw_fraction']:.0f}% of copy)  "
              f"custom calls {calls}{extra}")
    result = {"stamp": stamp, "copy_bandwidth": copy_bw, "rows": rows}
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1, default=str)
    return result


if __name__ == "__main__":
    main()
