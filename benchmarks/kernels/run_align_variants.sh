#!/usr/bin/env bash
# Builds and runs the align launch-variant microbenchmark (align_variants.cu)
# on the GPU of this machine; about 20-50 s to build (nvcc, sm_90) + a few s to run.
#
#   bash benchmarks/kernels/run_align_variants.sh [OUT_DIR]
#
# OUT_DIR (default: ./align_variants_out) receives the log, a CSV of the
# timings and a per-kernel count of local-memory instructions in the SASS
# (a batch whose loads spill to local memory waits on every load).
# Needs nvcc and an importable jax (for the XLA FFI headers that csrc/align.cu includes).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT_DIR=${1:-align_variants_out}
mkdir -p "$OUT_DIR"
XLA_INC=$(python3 -c 'import jax; print(jax.ffi.include_dir())')
BIN="$OUT_DIR/align_variants.bin"
START=$(date +%s)
nvcc -O3 -arch=sm_90 -std=c++17 --expt-relaxed-constexpr -lineinfo -split-compile=0 \
  -isystem "$XLA_INC" -Icsrc -Ibenchmarks/kernels -Xptxas -warn-spills \
  -diag-suppress 940,2473 benchmarks/kernels/align_variants.cu -o "$BIN" 2>&1 |
  grep -v '^$' | tee "$OUT_DIR/build.log" || true
[ -x "$BIN" ] || { echo "build failed"; exit 1; }
echo "built in $(( $(date +%s) - START )) s"
if command -v cuobjdump >/dev/null; then
  # Per kernel: SASS lines, LDL/STL (local memory) and 8/16-byte global loads.
  cuobjdump --dump-sass "$BIN" | awk '
    /Function :/ { if (name) printf "%-110s lines %6d  LDL %4d  STL %4d\n", name, n, ldl, stl;
                   name = $3; n = ldl = stl = 0; next }
    { n++ } /LDL/ { ldl++ } /STL/ { stl++ }
    END { if (name) printf "%-110s lines %6d  LDL %4d  STL %4d\n", name, n, ldl, stl }' \
    > "$OUT_DIR/sass_local.txt" || true
fi
"$BIN" "$OUT_DIR" 2>&1 | tee "$OUT_DIR/run.log"
rm -f "$BIN"  # large; rebuilt each run
