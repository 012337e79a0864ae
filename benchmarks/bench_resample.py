"""resample benchmark: a shortcut for ``run.py --ops resample`` (docs/perf.md).

Usage: python benchmarks/bench_resample.py [--quick] [--cpu-smoke] [run.py's flags]

--quick: one input draw x 3 repeats; --cpu-smoke: the smoke suite (tiny, any backend);
run.py's flags: --suite, --out DIR, --filter, --no-torch, ...
Cases (issue #2's targets and a size sweep) in
``benchmarks/suites/resample.py``.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402

if __name__ == "__main__":
    sys.exit(run.op_main("resample"))
