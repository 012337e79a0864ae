"""points_to_voxels benchmark: a shortcut for ``run.py --ops points_to_voxels`` (docs/perf.md).

Usage: python benchmarks/bench_points_to_voxels.py [--quick] [--cpu-smoke] [run.py's flags]

--quick: one input draw x 3 repeats; --cpu-smoke: the smoke suite (tiny, any backend);
run.py's flags: --suite, --out DIR, --filter, --no-torch, ...
Cases (issue #5's targets: KITTI-like voxels and PointPillars) in
``benchmarks/suites/points_to_voxels.py``.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402

if __name__ == "__main__":
    sys.exit(run.op_main("points_to_voxels"))
