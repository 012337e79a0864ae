"""voxelize benchmark: a shortcut for ``run.py --ops voxelize`` (docs/perf.md).

Usage: python benchmarks/bench_voxelize.py [--quick] [--cpu-smoke] [run.py's flags]

--quick: one input draw x 3 repeats; --cpu-smoke: the smoke suite (tiny, any backend);
run.py's flags: --suite, --out DIR, --filter, --no-torch, ...
Cases (issue #4's targets: 1M points into 128^3, 4M into 256^3, C=4) in
``benchmarks/suites/voxelize.py``.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402

if __name__ == "__main__":
    sys.exit(run.op_main("voxelize"))
