"""resample benchmark: a shortcut for ``run.py --ops resample`` (see docs/perf.md).

Usage: python benchmarks/bench_resample.py [--quick] [run.py's flags: --suite, --out DIR, ...]

The cases (issue #2's targets, and the full suite's sweep) live in
``benchmarks/suites/resample.py``; ``--quick`` means one input draw x 3 repeats.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--quick" in argv:
        argv.remove("--quick")
        argv += ["--seeds", "1", "--repeats", "3"]
    return run.main(["--ops", "resample", *argv])


if __name__ == "__main__":
    sys.exit(main())
