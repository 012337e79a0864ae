"""UpperBoundFrom (csrc/streams/interp_plan.cuh), sample_windows' search on the GPU, finds
UpperBound's index on sorted times from any guess, and stays in [0, n] on unsorted ones.

check_upper_bound_from.cu runs both searches on the host over ~10 M queries (float32 and
float64 stamps with repeats, jitter, dropouts, +-inf; queries at stamps, between them, past
the ends, NaN). Host code only, one compile of a few seconds: needs nvcc, not a GPU.
"""

from nvcc_build import build, run


def test_upper_bound_from_equals_bisection(tmp_path):
    out = run(build("check_upper_bound_from.cu", tmp_path))
    assert "violations 0" in out, out
