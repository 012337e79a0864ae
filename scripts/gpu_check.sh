#!/usr/bin/env bash
# One device call: build the CUDA extension against the local jax, run the
# whole test suite (GPU tests included) and the benchmarks. Logs go to $OUT
# (or ./gpu_out). Usage: bash scripts/gpu_check.sh [bench args...]
set -uo pipefail
cd "$(dirname "$0")/.."
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
(cd /tmp && $PY -c "import jax_robocache as r, json; print(json.dumps(r.info(), indent=1))") | tee "$OUT/info.json"

# Tests (from tests/ so that the installed package, not the source tree, is imported).
[ -n "${SKIP_TESTS:-}" ] || (cd tests && timeout ${TEST_TIMEOUT:-300} $PY -m pytest -q -x -p no:cacheprovider \
   -W ignore::DeprecationWarning "${PYTEST_ARGS:-.}" 2>&1 | tee "$OUT/tests.log" | tail -15)

# Benchmarks.
for bench in ${BENCHES:-bench_resample}; do
  (cd benchmarks && timeout ${BENCH_TIMEOUT:-300} $PY "$bench.py" --out "$OUT/$bench.json" "$@" \
     2>&1 | tee "$OUT/$bench.log" | tail -20)
done
