#!/usr/bin/env bash
# One device call: build the CUDA extension against the local jax, run the
# whole test suite (GPU tests included) and the benchmark harness. Logs go to $OUT
# (or ./gpu_out). Usage: bash scripts/gpu_check.sh [benchmarks/run.py args...]
# Env: WHEEL (a CUDA wheel built here by `PYTHONS=python3.12 bash scripts/build_wheel.sh cuda`,
#      carried: installed instead of building on the device, whose pip may lack the build
#      backend), SKIP_TESTS=1, BENCH_SUITE (quick|full|smoke; default quick), SKIP_BENCH=1,
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

# Build (Hopper machine code only, to keep the device call short), or install the carried wheel.
start=$(date +%s)
if [ -n "${WHEEL:-}" ]; then
  $PY -m pip install --no-deps --force-reinstall "$WHEEL" > "$OUT/build.log" 2>&1 \
    || { tail -50 "$OUT/build.log"; echo INSTALL FAILED; exit 1; }
else
  CMAKE_ARGS="${CMAKE_ARGS:--DCMAKE_CUDA_ARCHITECTURES=90-real}" \
    $PY -m pip install --no-build-isolation --no-deps -v . > "$OUT/build.log" 2>&1 \
    || { tail -50 "$OUT/build.log"; echo BUILD FAILED; exit 1; }
fi
echo "build/install: $(( $(date +%s) - start )) s"
# Stop here, before spending device time, when a GPU is present but our kernels did not
# register (a wheel built against a newer jaxlib than the device runs, say): every test and
# benchmark would otherwise measure the jnp twins.
(cd /tmp && $PY -c "
import json, sys, jax_robocache as r
i = r.info(); print(json.dumps(i, indent=1))
sys.exit(3 if i['default_backend'] == 'gpu' and not i['cuda_kernels_registered'] else 0)
") | tee -a "$OUT/env.txt"
[ "${PIPESTATUS[0]}" = 0 ] || { echo "KERNELS NOT REGISTERED: see kernels_unavailable_reason above"; exit 3; }

# Tests (from tests/ so that the installed package, not the source tree, is imported). One
# line per test (-v), so that a run cut off by TEST_TIMEOUT still names its failures (-q names
# them only in the end summary).
if [ -z "${SKIP_TESTS:-}" ]; then
  (cd tests && timeout ${TEST_TIMEOUT:-300} $PY -m pytest -v -rfE --maxfail=${MAXFAIL:-20} \
     -p no:cacheprovider -W ignore::DeprecationWarning ${PYTEST_ARGS:-.} > "$OUT/tests.log" 2>&1)
  grep -E "(FAILED|ERROR)( |$)" "$OUT/tests.log" | head -40
  tail -3 "$OUT/tests.log"
fi

# Benchmarks: every op's suite in one run (benchmarks/run.py: resample, align, voxelize,
# points_to_voxels), stopped in time (full runs each op's quick case(s) first).
if [ -z "${SKIP_BENCH:-}" ]; then
  left=$(( ${DEADLINE_S:-540} - ($(date +%s) - t_start) ))
  left=$(( left < 120 ? 120 : left ))  # (tests ran long: the 10 minutes are not kept then)
  timeout $(( left + 50 )) $PY benchmarks/run.py --suite "${BENCH_SUITE:-quick}" --out "$OUT" \
    --markdown "$OUT/perf_tables.md" --time-budget-s $(( left - 60 )) "$@" 2>&1 \
    | tee "$OUT/bench.log" | tail -40
fi
