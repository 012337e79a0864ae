"""Benchmarks every op over a named shape suite; one entry point.

  python benchmarks/run.py --suite full --out DIR [--markdown docs/perf.md]

Per case: our op's in-graph device time (the CUDA kernel on GPUs), the same
as one jitted call from Python, our jnp twin's in-graph time, and the PyTorch
and numpy baselines; median, p99, mean with a 95% CI over N input draws x R
repeats; speedups; bandwidth on the bytes that must move, as a fraction of
the copy bandwidth measured in this run. Writes DIR/bench.json and bench.csv
after every case (a run cut short keeps what it measured: ``report.py``
rebuilds the rest from bench.json), and at the end report.html and the
markdown tables (between the markers of an existing file, e.g. docs/perf.md).
``full`` runs every op's ``quick`` cases first, so that a run stopped by its
time budget (``--time-budget-s``) still covers every op.
``--suite smoke`` is the seconds-long CPU check that CI runs (no thresholds).
``--profile-calls N`` only calls each case's op N times (for benchmarks/profile.sh).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import harness  # noqa: E402
import report  # noqa: E402
import stamp  # noqa: E402
import suites  # noqa: E402
import timing  # noqa: E402

DEFAULT_BUDGET_S = {"smoke": 0, "quick": 300, "full": 450}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", choices=suites.SUITES, default="quick")
    p.add_argument("--ops", default="", help="comma-separated ops (default: every suite module)")
    p.add_argument("--filter", default="", help="only cases whose name contains this")
    p.add_argument("--out", help="directory for bench.json, bench.csv, report.html")
    p.add_argument("--markdown", help="write the markdown tables here (e.g. docs/perf.md)")
    p.add_argument("--seeds", type=int, help="input draws per case (suite default)")
    p.add_argument("--repeats", type=int, help="timed repeats per draw (suite default)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-numpy", action="store_true")
    p.add_argument("--git-sha", help=f"stamp this SHA (else ${stamp.GIT_SHA_ENV}, else git)")
    p.add_argument("--time-budget-s", type=float,
                   help="start no case after this many seconds (0: none; default per suite: "
                        f"{DEFAULT_BUDGET_S})")
    p.add_argument("--profile-calls", type=int, default=0,
                   help="only call each case's op this many times (under ncu)")
    return p.parse_args(argv)


def selected_cases(args, skipped: list):
    ops = [o for o in args.ops.split(",") if o] or suites.available_ops()
    for op in ops:
        try:
            module = suites.load(op)
        except ImportError as e:
            skipped.append(f"{op}: {e}")
            print(f"# skipped {op}: {e}")
            continue
        yield op, [c for c in module.cases(args.suite) if args.filter in c.name]


def run_order(args, skipped: list) -> list:
    """The selected cases in the order they run: ``full`` runs every op's ``quick`` cases
    first, then the rest op by op, so a run stopped by its time budget still has every op."""
    per_op = list(selected_cases(args, skipped))
    if args.suite != "full":
        return [c for _, cases in per_op for c in cases]
    first = {(op, c.name) for op, _ in per_op for c in suites.load(op).cases("quick")}
    ordered = [c for _, cases in per_op for c in cases if (c.op, c.name) in first]
    return ordered + [c for _, cases in per_op for c in cases if (c.op, c.name) not in first]


def profile(args) -> int:
    """Calls each selected case's op (kernel path) a few times; nothing is timed."""
    for _, cases in selected_cases(args, []):
        for case in cases:
            operands = [jnp.asarray(a) for a in case.make_inputs(np.random.default_rng(0))]
            jitted = jax.jit(lambda *a, c=case: c.fn(*a))
            for _ in range(args.profile_calls):
                jax.block_until_ready(jitted(*operands))
            print(f"profiled {case.op}/{case.name} x{args.profile_calls}")
    return 0


def print_case(rows: list[dict]) -> None:
    r = {row["impl"]: row for row in rows}
    o = r["ours"]
    parts = [f"{o['op']}/{o['case']:<18s} ours {report.fmt_time(o['median']):>10s}"
             f" ({o['backend']}, {100 * o['bw_fraction']:.0f}% of copy)"]
    for impl in ("ours_standalone", "jnp", "torch", "numpy"):
        if impl in r:
            parts.append(f"{impl} {report.fmt_time(r[impl]['median'])} "
                         f"({r[impl]['ours_speedup']:.1f}x)")
    goal = f"  goal: {report.fmt_goal(o)}" if o.get("goal") else ""
    print("  ".join(parts) + f"  [{o['seconds_spent']:.0f} s]{goal}", flush=True)


def write_outputs(result: dict, args, reports: bool = True) -> None:
    """bench.json and bench.csv; with ``reports`` also report.html and the markdown
    (slower: plots)."""
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        report.write_json(result, os.path.join(args.out, "bench.json"))
        report.write_csv(result, os.path.join(args.out, "bench.csv"))
        if reports:
            report.write_html(result, os.path.join(args.out, "report.html"))
    if args.markdown and reports:
        report.write_markdown(result, args.markdown)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.profile_calls:
        return profile(args)
    t0 = time.perf_counter()
    overrides = {k: v for k, v in dict(seeds=args.seeds, repeats=args.repeats).items() if v}
    settings = dataclasses.replace(harness.SUITE_SETTINGS[args.suite], torch=not args.no_torch,
                                   numpy=not args.no_numpy, **overrides)
    budget = args.time_budget_s if args.time_budget_s is not None else DEFAULT_BUDGET_S[args.suite]
    result = dict(stamp=stamp.collect(args.git_sha), suite=args.suite,
                  settings=dataclasses.asdict(settings), argv=sys.argv, rows=[], skipped=[],
                  errors=[])
    print("#", stamp.one_line(result["stamp"]), flush=True)
    on_gpu = harness.current_device().platform == "gpu"
    nbytes = (1 << 30) if on_gpu else (4 << 20) if args.suite == "smoke" else (64 << 20)
    result["copy_bandwidth_Bps"] = timing.copy_bandwidth(nbytes, max(settings.repeats, 3),
                                                          unroll=settings.unroll)
    print(f"# copy bandwidth {result['copy_bandwidth_Bps'] / 1e9:.0f} GB/s (read + write)")
    for case in run_order(args, result["skipped"]):
        if budget and time.perf_counter() - t0 > budget:
            result["skipped"].append(f"{case.op}/{case.name}: time budget of {budget:.0f} s "
                                     "spent")
            continue
        try:
            rows = harness.measure(case, settings, result["copy_bandwidth_Bps"],
                                   errors=result["errors"])
        except Exception as e:  # noqa: BLE001  (one broken case must not sink the run)
            traceback.print_exc()
            result["errors"].append(f"{case.op}/{case.name}: {type(e).__name__}: {e}")
            continue
        result["rows"] += rows
        print_case(rows)
        write_outputs(result, args, reports=False)
    write_outputs(result, args)
    for what in ("skipped", "errors"):
        for item in result[what]:
            print(f"# {what}: {item}")
    print(f"# done in {time.perf_counter() - t0:.0f} s")
    return 1 if result["errors"] else 0


def share_gpu_memory() -> None:
    """JAX and torch share the GPU in this process: leave torch half of the memory
    (read when jax first touches the GPU, after the imports)."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.5")


if __name__ == "__main__":
    share_gpu_memory()
    sys.exit(main())
