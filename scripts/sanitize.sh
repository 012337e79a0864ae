#!/usr/bin/env bash
# Runs our kernels under compute-sanitizer's memcheck, racecheck, initcheck and
# synccheck (only kernels of namespace robocache are checked) on a GPU machine,
# on the workload of scripts/gpu_workload.py (every op, edge shapes included),
# and prints the error count of each tool. Exit status: non-zero if any tool
# reported an error. Usage: bash scripts/sanitize.sh   (package installed)
# Env: TOOLS (default: all four), WORKLOAD_ARGS (passed to gpu_workload.py, e.g.
# "--ops resample align"), TOOL_TIMEOUT (seconds per tool, default 900).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
[ -n "$SAN" ] || { echo "compute-sanitizer not found"; exit 2; }
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # let the sanitizer see real allocations
status=0
for tool in ${TOOLS:-memcheck racecheck initcheck synccheck}; do
  log="$OUT/sanitize_$tool.log"
  # shellcheck disable=SC2086
  timeout "${TOOL_TIMEOUT:-900}" "$SAN" --tool "$tool" --kernel-name kns=robocache \
    --error-exitcode 99 --print-limit 20 python3 scripts/gpu_workload.py ${WORKLOAD_ARGS:-} \
    > "$log" 2>&1
  rc=$?
  summary=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$log" | tail -1)
  echo "$tool: exit $rc; ${summary:-no summary line (see $log)}"
  [ $rc -eq 0 ] || status=1
done
exit $status
