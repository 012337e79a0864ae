#!/usr/bin/env bash
# One Nsight Compute capture of one op's CUDA kernels, and a summary CSV.
#
#   bash benchmarks/profile.sh OP [CASE_SUBSTRING]      e.g. bash benchmarks/profile.sh resample train
#
# Runs `benchmarks/run.py --profile-calls` (each case of the suite calls the op's
# kernel path a few times, nothing else is timed) under ncu, limited to our kernels
# (demangled names in namespace robocache::) and a small launch count. Writes
# $OUT/OP.ncu-rep (open it in the Nsight Compute GUI), OP.raw.csv (every metric)
# and OP.summary.csv (kernel, duration, achieved DRAM bandwidth, occupancy).
# ncu is taken from $NCU, else PATH, else /opt/nvidia/nsight-compute/*/ncu, else
# /usr/local/cuda/bin/ncu. Clocks are left as found (--clock-control none), caches
# are flushed before each kernel replay (ncu's default), so numbers are cold-cache.
# Env: OUT (./profile_out), SUITE (quick), CALLS (2 per case), LAUNCHES (12),
#      KERNEL_REGEX (robocache::), PYTHON (python3).
# Nsight Systems (nsys) does not work on the lent GPU machines: see docs/perf.md.
set -euo pipefail
op=${1:?usage: benchmarks/profile.sh OP [CASE_SUBSTRING]}
filter=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$PWD/profile_out}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
if [ -z "${NCU:-}" ]; then
  NCU=$(command -v ncu || ls -d /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$NCU" ] || NCU=/usr/local/cuda/bin/ncu
fi
[ -x "$NCU" ] || { echo "ncu not found (PATH, /opt/nvidia/nsight-compute/*/ncu): set NCU=" >&2; exit 2; }
rep="$OUT/$op"
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # ncu saves/restores device memory between replays

"$NCU" --clock-control none --target-processes all \
  --kernel-name-base demangled --kernel-name "regex:${KERNEL_REGEX:-robocache::}" \
  --launch-count "${LAUNCHES:-12}" \
  --section SpeedOfLight --section Occupancy --section LaunchStats \
  --section MemoryWorkloadAnalysis \
  --metrics dram__bytes_read.sum,dram__bytes_write.sum,dram__bytes.sum.per_second \
  --force-overwrite --export "$rep" \
  "$PY" "$here/run.py" --ops "$op" --suite "${SUITE:-quick}" --filter "$filter" \
  --profile-calls "${CALLS:-2}"

"$NCU" --import "$rep.ncu-rep" --page raw --csv --print-units base > "$rep.raw.csv"
"$PY" "$here/ncu_summary.py" "$rep.raw.csv" > "$rep.summary.csv"
cat "$rep.summary.csv"
