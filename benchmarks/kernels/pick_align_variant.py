"""Picks the fastest bit-exact align launch variant from a run of align_variants.cu.

    python benchmarks/kernels/pick_align_variant.py OUT_DIR/align_variants.csv [--apply]

The score of a variant is the sum of its median times over every case (fuse_T250,
fuse_T50, mixed_T250); only variants bit-exact on every case qualify. Prints the
`AlignTune<...>` of the winner (from `Variants()` in align_variants.cu); with
--apply, writes it into csrc/align.cu's `using AlignTuning = ...;` line.
"""

from __future__ import annotations

import argparse
import csv
import collections
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "kernels" / "align_variants.cu"
KERNEL = ROOT / "csrc" / "align.cu"
TUNING = re.compile(r"using AlignTuning = (AlignTune<[^;]*>);")


def tunings() -> dict[str, str]:
    """Variant name -> its AlignTune<...> expression ("default" -> the current one)."""
    text = BENCH.read_text()
    found = {name: expr for expr, name in
             re.findall(r'V<(AlignTune<[^>]*>)>\("([^"]+)"', text)}
    found["default"] = TUNING.search(KERNEL.read_text()).group(1)
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("csv")
    p.add_argument("--apply", action="store_true")
    args = p.parse_args()
    total, exact = collections.defaultdict(float), collections.defaultdict(lambda: True)
    for row in csv.DictReader(open(args.csv)):
        total[row["variant"]] += float(row["us_median"])
        exact[row["variant"]] &= row["bitexact"] == "1"
    known = tunings()
    ranked = sorted((t, v) for v, t in total.items() if exact[v] and v in known)
    for t, v in ranked:
        print(f"{v:20s} {t:8.2f} us  {known[v]}")
    best = ranked[0][1]
    print(f"best: {best} = {known[best]}")
    if args.apply:
        text = KERNEL.read_text()
        KERNEL.write_text(TUNING.sub(f"using AlignTuning = {known[best]};", text, count=1))


if __name__ == "__main__":
    main()
