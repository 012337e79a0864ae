#!/usr/bin/env bash
# Builds and runs the resample microbenchmark (benchmarks/kernels/resample_variants.cu):
#   bash benchmarks/kernels/run_resample_variants.sh
# Needs nvcc and an importable jax (csrc/resample.cu includes the XLA FFI headers).
# With OUT set, also writes $OUT/resample_variants.txt (the whole output),
# resample_variants.csv (every timing) and ptxas.txt (registers and spills of every
# kernel). About 25 s to build, 15 s to run on an H200.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
log=${OUT:-$build}/ptxas.txt
inc=$(python3 -c 'import jax; print(jax.ffi.include_dir())')
start=$SECONDS
if ! nvcc -O3 -arch=sm_90 -std=c++17 --expt-relaxed-constexpr -Xptxas -v \
     -I"$inc" -I"$root/csrc" -o "$build/resample_variants" \
     "$root/benchmarks/kernels/resample_variants.cu" 2> "$build/nvcc.txt"; then
  cat "$build/nvcc.txt" >&2
  exit 1
fi
grep -v -e "warning #" -e "Remark" "$build/nvcc.txt" > "$log" || true
echo "built in $((SECONDS - start)) s"
if [ -n "${OUT:-}" ]; then
  "$build/resample_variants" | tee "$OUT/resample_variants.txt"
else
  "$build/resample_variants"
fi
