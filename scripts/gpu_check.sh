#!/usr/bin/env bash
# One device call: build the CUDA extension against the local jax, run the
# whole test suite (GPU tests included) and the benchmark harness. Logs go to $OUT
# (or ./gpu_out). Usage: bash scripts/gpu_check.sh [benchmarks/run.py args...]
# Env: SKIP_TESTS=1, BENCH_SUITE (quick|full|smoke; default quick), SKIP_BENCH=1,
#      ROBOCACHE_GIT_SHA (the tree arrives without .git: pass the SHA it was copied at),
#      DEADLINE_S (540: no benchmark case starts after the call has run this long - 60 s).
# The full suite within one 10-minute device call:
#   SKIP_TESTS=1 BENCH_SUITE=full ROBOCACHE_GIT_SHA=<sha> bash scripts/gpu_check.sh
# $OUT gets 8 files: env.txt build.log tests.log bench.log bench.json bench.csv
# report.html perf_tables.md.
set -uo pipefail
cd "$(dirname "$0")/.."
t_start=$(date +%s)
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
  $PY -c "import jax, jaxlib; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, jax.devices())"
} 2>&1 | tee "$OUT/env.txt"

# Build: Hopper machine code only, to keep the device call short.
start=$(date +%s)
CMAKE_ARGS="${CMAKE_ARGS:--DCMAKE_CUDA_ARCHITECTURES=90-real}" \
  $PY -m pip install --no-build-isolation --no-deps -v . > "$OUT/build.log" 2>&1 \
  || { tail -50 "$OUT/build.log"; echo BUILD FAILED; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
(cd /tmp && $PY -c "import jax_robocache as r, json; print(json.dumps(r.info(), indent=1))") | tee -a "$OUT/env.txt"

# Tests (from tests/ so that the installed package, not the source tree, is imported).
[ -n "${SKIP_TESTS:-}" ] || (cd tests && timeout ${TEST_TIMEOUT:-300} $PY -m pytest -q --maxfail=${MAXFAIL:-20} -p no:cacheprovider \
   -W ignore::DeprecationWarning ${PYTEST_ARGS:-.} 2>&1 | tee "$OUT/tests.log" | tail -15)

# Benchmarks: every op's suite in one run (benchmarks/run.py: resample, align, voxelize,
# points_to_voxels), stopped in time (full runs each op's quick case(s) first).
if [ -z "${SKIP_BENCH:-}" ]; then
  left=$(( ${DEADLINE_S:-540} - ($(date +%s) - t_start) ))
  left=$(( left < 120 ? 120 : left ))  # (tests ran long: the 10 minutes are not kept then)
  timeout $(( left + 50 )) $PY benchmarks/run.py --suite "${BENCH_SUITE:-quick}" --out "$OUT" \
    --markdown "$OUT/perf_tables.md" --time-budget-s $(( left - 60 )) "$@" 2>&1 \
    | tee "$OUT/bench.log" | tail -40
fi
