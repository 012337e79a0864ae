"""resample: CUDA FFI kernel vs our jnp twin on the same GPU, in-graph device time.

Usage: python benchmarks/bench_resample.py [--out results.json] [--quick]

Cases (issue #2): the training batch B=256, S=500, D=32, T=50 (float32 and
bfloat16), goal >= 10x over jnp; and the large 256 x 2000 x 256 -> 1000
bfloat16, goal >= 80% of the measured copy bandwidth on the bytes that must
move (value rows actually referenced + queries + output + valid mask).
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
from jax_robocache import resample  # noqa: E402

CASES = {
    "train_f32": dict(B=256, S=500, D=32, T=50, dtype="float32"),
    "train_bf16": dict(B=256, S=500, D=32, T=50, dtype="bfloat16"),
    "large_bf16": dict(B=256, S=2000, D=256, T=1000, dtype="bfloat16"),
}


def make_inputs(rng, B, S, D, T, dtype):
    gaps = rng.uniform(0.5, 1.5, (B, S)) * (5.0 / S)
    times = np.cumsum(gaps, axis=1).astype(np.float32)
    queries = np.sort(rng.uniform(times[:, :1], times[:, -1:], (B, T)), axis=1).astype(np.float32)
    values = jnp.asarray(rng.normal(size=(B, S, D)).astype(np.float32)).astype(dtype)
    return values, times, queries


def bytes_moved(values, times, queries):
    """Fewest bytes: referenced value rows (both neighbours), queries, output, valid."""
    B, S, D = values.shape
    T = queries.shape[1]
    item = jnp.dtype(values.dtype).itemsize
    rows = 0
    for b in range(B):
        i = np.clip(np.searchsorted(times[b], queries[b], side="right") - 1, 0, S - 1)
        rows += len(np.union1d(i, np.minimum(i + 1, S - 1)))
    return rows * D * item + queries.size * 4 + B * T * D * item + B * T


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
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    repeats = 3 if args.quick else 7

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
    rng = np.random.default_rng(0)
    rows = []
    for name in args.cases.split(","):
        case = CASES[name]
        values, times, queries = make_inputs(rng, **case)
        nbytes = bytes_moved(values, times, queries)
        operands = [values, times, queries]
        kernel = timing.time_in_graph(lambda v, t, q: resample(v, t, q), operands, feed=2,
                                      repeats=repeats)
        uses_kernel = "robocache_resample" in jax.jit(lambda v, t, q: resample(v, t, q)).lower(
            *operands).as_text()
        os.environ["JAX_ROBOCACHE_FORCE_JNP"] = "1"
        twin = timing.time_in_graph(lambda v, t, q: resample(v, t, q), operands, feed=2,
                                    repeats=repeats)
        assert "robocache_resample" not in jax.jit(lambda v, t, q: resample(v, t, q)).lower(
            *operands).as_text(), "JAX_ROBOCACHE_FORCE_JNP did not take effect"
        del os.environ["JAX_ROBOCACHE_FORCE_JNP"]
        # The per-call floor of this timing method: a trivial op with an output
        # of the same size (one launch reading queries, writing [B, T, D]).
        floor = timing.time_in_graph(
            lambda v, t, q: jnp.broadcast_to(q[..., None], q.shape + (v.shape[-1],)).astype(
                v.dtype), operands, feed=2, repeats=repeats)
        k, j, fl = timing.summarize(kernel), timing.summarize(twin), timing.summarize(floor)
        row = dict(case=name, **case, bytes=nbytes, kernel=k, jnp=j, floor=fl,
                   uses_kernel=uses_kernel,
                   speedup=j["median"] / k["median"],
                   kernel_bw=nbytes / k["median"], bw_fraction=nbytes / k["median"] / copy_bw)
        rows.append(row)
        print(f"{name:12s} kernel {k['median'] * 1e6:9.1f} us  jnp {j['median'] * 1e6:9.1f} us  "
              f"floor {fl['median'] * 1e6:6.1f} us  "
              f"speedup {row['speedup']:6.1f}x  {row['kernel_bw'] / 1e12:5.2f} TB/s "
              f"({100 * row['bw_fraction']:.0f}% of copy)")
    result = {"stamp": stamp, "copy_bandwidth": copy_bw, "rows": rows}
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1, default=str)
    return result


if __name__ == "__main__":
    main()
