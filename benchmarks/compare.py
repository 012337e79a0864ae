"""Compares a benchmark run with a stored baseline run; fails on regressions.

  python benchmarks/compare.py RUN.json BASELINE.json [--p50 0.05] [--p99 0.10] [--impls ours]

Rows are matched by (op, case, impl). A case regresses when its median grows
by more than --p50 (default 5%) or its p99 by more than --p99 (default 10%).
Exit status: 0 no regression, 1 at least one regression, 2 nothing to compare
(no common rows, or the runs come from different devices without
--allow-device-mismatch). Run both on the same device: timings don't transfer.
"""

from __future__ import annotations

import argparse
import json
import sys


def load_rows(path: str) -> tuple[dict, dict]:
    with open(path) as fh:
        run = json.load(fh)
    return run.get("stamp", {}), {(r["op"], r["case"], r["impl"]): r for r in run["rows"]}


def compare(run_rows: dict, base_rows: dict, impls: set, p50: float, p99: float) -> list[tuple]:
    """[(key, base p50, run p50, p50 change, base p99, run p99, p99 change, status)]."""
    table = []
    for key in sorted(base_rows):
        if key[2] not in impls:
            continue
        base, run = base_rows[key], run_rows.get(key)
        if run is None:
            table.append((key, base["median"], None, None, base["p99"], None, None, "missing"))
            continue
        d50 = run["median"] / base["median"] - 1
        d99 = run["p99"] / base["p99"] - 1
        status = "REGRESSED" if d50 > p50 or d99 > p99 else "ok"
        table.append((key, base["median"], run["median"], d50, base["p99"], run["p99"], d99,
                      status))
    for key in sorted(set(run_rows) - set(base_rows)):
        if key[2] in impls:
            table.append((key, None, run_rows[key]["median"], None, None, run_rows[key]["p99"],
                          None, "new"))
    return table


def _us(s):
    return "-" if s is None else f"{s * 1e6:.1f}"


def _pct(d):
    return "-" if d is None else f"{100 * d:+.1f}%"


def print_table(table: list[tuple]) -> None:
    print(f"{'op/case/impl':44s} {'base p50':>10s} {'run p50':>10s} {'change':>8s} "
          f"{'base p99':>10s} {'run p99':>10s} {'change':>8s}  status   (times in us)")
    for key, b50, r50, d50, b99, r99, d99, status in table:
        print(f"{'/'.join(key):44s} {_us(b50):>10s} {_us(r50):>10s} {_pct(d50):>8s} "
              f"{_us(b99):>10s} {_us(r99):>10s} {_pct(d99):>8s}  {status}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("baseline")
    p.add_argument("--p50", type=float, default=0.05, help="allowed median growth (0.05 = 5%%)")
    p.add_argument("--p99", type=float, default=0.10, help="allowed p99 growth (0.10 = 10%%)")
    p.add_argument("--impls", default="ours",
                   help="comma-separated implementations to gate (ours, ours_standalone, jnp, ...)")
    p.add_argument("--allow-device-mismatch", action="store_true")
    args = p.parse_args(argv)
    run_stamp, run_rows = load_rows(args.run)
    base_stamp, base_rows = load_rows(args.baseline)
    devices = run_stamp.get("device"), base_stamp.get("device")
    print(f"run: {devices[0]} git {run_stamp.get('git')} {run_stamp.get('date')}\n"
          f"baseline: {devices[1]} git {base_stamp.get('git')} {base_stamp.get('date')}")
    if devices[0] != devices[1] and not args.allow_device_mismatch:
        print(f"different devices ({devices[0]} vs {devices[1]}): not comparable")
        return 2
    table = compare(run_rows, base_rows, set(args.impls.split(",")), args.p50, args.p99)
    print_table(table)
    compared = [row for row in table if row[7] in ("ok", "REGRESSED")]
    regressed = [row for row in compared if row[7] == "REGRESSED"]
    if not compared:
        print("nothing to compare")
        return 2
    print(f"{len(regressed)} of {len(compared)} rows regressed (p50 > +{100 * args.p50:g}% "
          f"or p99 > +{100 * args.p99:g}%)")
    return 1 if regressed else 0


if __name__ == "__main__":
    sys.exit(main())
