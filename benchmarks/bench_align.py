"""align / fuse_multimodal benchmark: a shortcut for ``run.py --ops align`` (docs/perf.md).

Usage: python benchmarks/bench_align.py [--quick] [--cpu-smoke] [run.py's flags]

--quick: one input draw x 3 repeats; --cpu-smoke: the smoke suite (tiny, any backend);
run.py's flags: --suite, --out DIR, --filter, --no-torch, ...
Cases (issue #3's targets: vision, proprio and force onto T=250 and T=50) in
``benchmarks/suites/align.py``.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402

if __name__ == "__main__":
    sys.exit(run.op_main("align"))
