#!/usr/bin/env bash
# Builds and runs benchmarks/floors/voxelize_floor.cu (lower bounds for voxelize count):
#   bash benchmarks/floors/run_voxelize_floor.sh
# Needs nvcc and a GPU; with OUT set, also writes $OUT/voxelize_floor.txt. Seconds to build and run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
nvcc -O3 -arch=native -std=c++17 -o "$build/voxelize_floor" "$root/benchmarks/floors/voxelize_floor.cu"
if [ -n "${OUT:-}" ]; then
  "$build/voxelize_floor" | tee "$OUT/voxelize_floor.txt"
else
  "$build/voxelize_floor"
fi
