"""Soak: every op called 100,000 times with varying shapes; host and device memory must stay flat.

Usage: python scripts/soak.py [--calls 100000] [--ops resample align ...] [--json FILE]

How the calls are made: per op a handful of entries of gpu_workload.py (different
shapes, methods, modes; at most 4 MiB of operands each), every one a cached
jitted function whose operands were put on the device once. A tight Python loop
cycles through them (call i uses entry i % k), blocking on the result every
--sync-every calls so that the dispatch queue stays bounded; every
--eager-every-th call runs the op without jit instead (argument checks,
canonicalisation and the per-primitive caches of the eager path). So 100,000
calls cost about 100,000 dispatches (~20-50 us each on a GPU host) plus the
kernels: a few seconds to a minute per op. Not a lax.scan: every call goes
through the host-side runtime (dispatch, output buffers, the FFI handler),
which is where a per-call leak would live.

Memory: host RSS (VmRSS) and the device allocator's statistics
(``Device.memory_stats()``: bytes_in_use, peak_bytes_in_use, pool size; none
on CPU) are sampled after a warm-up pass (every entry compiled, jitted and
eager) and then --samples times. An op FAILS when, from the first sample to
the last, host RSS grew by more than --tolerance-host-mb or device
bytes_in_use by more than --tolerance-device-mb (after the warm-up, device
memory in use must not move at all: every output is freed). Prints a table per
op and, last, one JSON line with the summary; exit status 1 if anything grew.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from gpu_workload import GENERATORS  # noqa: E402

MAX_OPERAND_BYTES = 4 << 20
ENTRIES_PER_OP = 6


def host_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def device_stats() -> dict | None:
    """bytes_in_use / peak_bytes_in_use / pool bytes of the default device, in MiB (None: CPU)."""
    stats = jax.devices()[0].memory_stats()
    if not stats:
        return None
    keys = ("bytes_in_use", "peak_bytes_in_use", "pool_bytes", "bytes_reserved")
    return {k: round(stats[k] / 2**20, 3) for k in keys if k in stats}


def soak_entries(op: str, rng) -> list:
    """A few workload entries of ``op`` spread over its list (varied shapes), operands on device."""
    items = []
    for name, fn, operands in GENERATORS[op](rng):
        if sum(np.asarray(x).nbytes for x in operands) <= MAX_OPERAND_BYTES:
            items.append((name, fn, operands))
    step = max(1, len(items) // ENTRIES_PER_OP)
    return [(name, fn, jax.device_put(operands)) for name, fn, operands in
            items[::step][:ENTRIES_PER_OP]]


def soak_op(op: str, entries: list, args, deadline: float) -> dict:
    for _ in range(3):  # warm-up: compile every entry, fill the dispatch caches
        for _, fn, operands in entries:
            jax.block_until_ready(fn(*operands))
            jax.block_until_ready(fn.__wrapped__(*operands))
    gc.collect()  # (no output alive here either)
    samples = [(0, host_rss_mb(), device_stats(), 0.0)]
    every = max(args.calls // args.samples, 1)
    start, out, calls = time.perf_counter(), None, 0
    for i in range(args.calls):
        _, fn, operands = entries[i % len(entries)]
        eager = args.eager_every and i % args.eager_every == args.eager_every - 1
        out = (fn.__wrapped__ if eager else fn)(*operands)
        calls = i + 1
        if calls % args.sync_every == 0:
            jax.block_until_ready(out)
        if calls % every == 0 or calls == args.calls:
            jax.block_until_ready(out)
            out = None  # measure with no output alive (entries differ in output size)
            gc.collect()
            samples.append((calls, host_rss_mb(), device_stats(), time.perf_counter() - start))
            if time.perf_counter() > deadline:
                break
    seconds = time.perf_counter() - start
    first, last = samples[0], samples[-1]
    grow_host = last[1] - first[1]
    grow_dev = (last[2]["bytes_in_use"] - first[2]["bytes_in_use"]) if first[2] else None
    ok = grow_host <= args.tolerance_host_mb and (
        grow_dev is None or grow_dev <= args.tolerance_device_mb)
    print(f"\n{op}: {calls} calls over {len(entries)} entries in {seconds:.1f} s "
          f"({seconds / max(calls, 1) * 1e6:.1f} us/call)")
    for name, _, _ in entries:
        print(f"    {name}")
    print(f"{'calls':>8} {'host MB':>9} {'dev in use MB':>14} {'dev peak MB':>12} {'s':>7}")
    for c, host, dev, t in samples:
        dev = dev or {}
        print(f"{c:8d} {host:9.1f} {dev.get('bytes_in_use', float('nan')):14.3f} "
              f"{dev.get('peak_bytes_in_use', float('nan')):12.3f} {t:7.1f}")
    print(f"{op}: host {grow_host:+.1f} MB, device "
          f"{'n/a' if grow_dev is None else f'{grow_dev:+.3f} MB'} -> "
          f"{'flat' if ok else 'GROWING'}" + ("" if calls == args.calls else
                                                " (stopped early: time budget)"))
    return dict(op=op, ok=ok, calls=calls, complete=calls == args.calls, seconds=round(seconds, 2),
                us_per_call=round(seconds / max(calls, 1) * 1e6, 2),
                entries=[name for name, _, _ in entries],
                host_mb_start=round(first[1], 1), host_mb_end=round(last[1], 1),
                host_growth_mb=round(grow_host, 2), device_start=first[2], device_end=last[2],
                device_growth_mb=None if grow_dev is None else round(grow_dev, 3))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000, help="calls per op")
    parser.add_argument("--ops", nargs="+", choices=sorted(GENERATORS), help="default: all")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--sync-every", type=int, default=1000)
    parser.add_argument("--eager-every", type=int, default=100, help="0: jitted calls only")
    parser.add_argument("--tolerance-host-mb", type=float, default=16.0)
    parser.add_argument("--tolerance-device-mb", type=float, default=1.0)
    parser.add_argument("--time-budget-s", type=float, default=None,
                        help="stop each op early (reported) so that all ops fit in this time")
    parser.add_argument("--json", help="also write the summary to this file")
    args = parser.parse_args()
    ops = args.ops or list(GENERATORS)
    t0 = time.perf_counter()
    results = []
    for k, op in enumerate(ops):
        entries = soak_entries(op, np.random.default_rng(k))
        left = (args.time_budget_s - (time.perf_counter() - t0)) if args.time_budget_s else 1e9
        results.append(soak_op(op, entries, args, time.perf_counter() + left / (len(ops) - k)))
        summary = dict(ok=all(r["ok"] for r in results), device=str(jax.devices()[0]),
                       device_kind=jax.devices()[0].device_kind, jax=jax.__version__,
                       calls_per_op=args.calls, tolerance_host_mb=args.tolerance_host_mb,
                       tolerance_device_mb=args.tolerance_device_mb,
                       seconds=round(time.perf_counter() - t0, 1), ops=results,
                       ops_left=ops[k + 1:])
        if args.json:  # after every op: a run killed later still leaves its results
            with open(args.json, "w") as fh:
                json.dump(summary, fh, indent=1)
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
