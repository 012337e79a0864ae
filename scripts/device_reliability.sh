#!/usr/bin/env bash
# ONE command for the GPU-side reliability checks of issue 9 (about 6-7 minutes on one GPU):
#   1. install the prebuilt CUDA wheel dist/cuda/*-cp3XX-*.whl of this Python, built
#      elsewhere against jaxlib 0.10.2's FFI headers (scripts/build_wheel.sh), with
#      pip --no-deps --force-reinstall: proves that it loads and runs on this jax;
#      without a matching wheel (or if its kernels do not register) build from
#      source instead (sm_90 only) so that the other checks still run;
#   2. python -m jax_robocache.self_test;
#   3. at the same time, each time-boxed:
#      * the long hypothesis profile (10,000 examples per op against the numpy
#        references on the GPU), one pytest process per fuzz test;
#      * the soak (scripts/soak.py: 100,000 calls per op, memory must stay flat);
#      * compute-sanitizer memcheck, racecheck, initcheck, synccheck on the small
#        workload, and the initcheck diagnosis of `lengths` (scripts/sanitize.sh).
# Runs on a machine without a GPU as far as it goes (kernels skip, sanitizers absent).
# Usage: bash scripts/device_reliability.sh     (writes 8 files to $OUT, default ./gpu_out:
#   summary.txt install.log self_test.log fuzz.log soak.log soak.json sanitize.txt
#   sanitize_logs.tar.gz)
# Env: PYTHON (python3), FUZZ_TIMEOUT (270 s per fuzz process), SOAK_BUDGET (200 s),
#      TOOL_TIMEOUT (270 s per sanitizer run), DEADLINE_S (450: the time boxes shrink so that
#      the parallel phase ends by then), SKIP_FUZZ=1, SKIP_SOAK=1, SKIP_SANITIZE=1.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu_out}
mkdir -p "$OUT"
WORK=$(mktemp -d)
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # several jax processes share the GPU
T0=$SECONDS
SUMMARY="$OUT/summary.txt"
say() { echo "$*" | tee -a "$SUMMARY"; }
: > "$SUMMARY"

# -- 1. install --------------------------------------------------------------------------------
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
  $PY -c "import sys, jax, jaxlib; print('python', sys.version.split()[0], 'jax', \
jax.__version__, 'jaxlib', jaxlib.__version__, jax.devices())"
} > "$WORK/env.txt" 2>&1
say "== environment"; sed 's/^/   /' "$WORK/env.txt" | tee -a "$SUMMARY"
tag=$($PY -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
wheel=$(ls dist/cuda/jax_robocache-*-"$tag"-*.whl 2>/dev/null | head -1)
info_py="import json, jax_robocache as r; i = r.info(); print(json.dumps(i)); \
import sys; sys.exit(0 if i['cuda_kernels_registered'] or not i['default_backend'] == 'gpu' else 3)"
install_ok=0
if [ -n "$wheel" ]; then
  say "== install: $wheel (built against jaxlib 0.10.2 FFI headers)"
  if $PY -m pip install --no-deps --force-reinstall "$wheel" > "$OUT/install.log" 2>&1 \
     && (cd /tmp && $PY -c "$info_py") >> "$OUT/install.log" 2>&1; then install_ok=1; fi
  say "   wheel $([ $install_ok = 1 ] && echo 'installed; kernels registered if there is a GPU' \
    || echo FAILED)"
else
  say "== install: no dist/cuda wheel for $tag" | tee "$OUT/install.log"
fi
if [ $install_ok = 0 ]; then
  say "   building from source (CMAKE_CUDA_ARCHITECTURES=90-real)"
  CMAKE_ARGS="${CMAKE_ARGS:--DCMAKE_CUDA_ARCHITECTURES=90-real}" \
    $PY -m pip install --no-build-isolation --no-deps --force-reinstall . \
    >> "$OUT/install.log" 2>&1 \
    && (cd /tmp && $PY -c "$info_py") >> "$OUT/install.log" 2>&1 && install_ok=2
  say "   source build: $([ $install_ok = 2 ] && echo ok || echo FAILED)"
fi
say "   info(): $(tail -1 "$OUT/install.log" | cut -c1-600)"

# -- 2. self_test ------------------------------------------------------------------------------
(cd /tmp && timeout 180 $PY -m jax_robocache.self_test) > "$OUT/self_test.log" 2>&1
rc=$?
say "== self_test: exit $rc ($(tail -1 "$OUT/self_test.log"))"

# -- 3. fuzz, soak, sanitizers at the same time --------------------------------------------------
# Time boxes shrink when the install took long (a source build): all ends by DEADLINE_S.
left=$(( ${DEADLINE_S:-450} - (SECONDS - T0) - 40 ))
min() { local m=$(( $1 < $2 ? $1 : $2 )); echo $(( m < 30 ? 30 : m )); }  # (timeout 0: none)
FUZZ_TIMEOUT=$(min "${FUZZ_TIMEOUT:-270}" $left)
SOAK_BUDGET=$(min "${SOAK_BUDGET:-200}" $(( left - 90 )))
TOOL_TIMEOUT=$(min "${TOOL_TIMEOUT:-270}" $left)
say "== time boxes: fuzz ${FUZZ_TIMEOUT} s per process, soak ${SOAK_BUDGET} s," \
    "sanitizers ${TOOL_TIMEOUT} s per run"
FUZZ_TESTS=("fuzz_resample and not validate" "fuzz_resample_validate" "fuzz_align"
            "fuzz_voxelize" "fuzz_points_to_voxels")
pids=()
if [ -z "${SKIP_FUZZ:-}" ]; then
  for k in "${!FUZZ_TESTS[@]}"; do
    (cd tests && HYPOTHESIS_PROFILE=long ROBOCACHE_FUZZ_COUNTS="$WORK/fuzz_counts_$k.json" \
       timeout -s INT -k 20 "$FUZZ_TIMEOUT" $PY -m pytest -q -x -p no:cacheprovider \
       -W ignore::DeprecationWarning --hypothesis-show-statistics \
       voxels/test_voxels_fuzz.py streams/test_streams_fuzz.py -k "${FUZZ_TESTS[$k]}" \
       > "$WORK/fuzz_$k.log" 2>&1; echo "exit $?" >> "$WORK/fuzz_$k.log") &
    pids+=($!)
  done
fi
if [ -z "${SKIP_SOAK:-}" ]; then
  (timeout -k 20 $(( SOAK_BUDGET + 90 )) $PY scripts/soak.py \
     --time-budget-s "$SOAK_BUDGET" --json "$OUT/soak.json" > "$OUT/soak.log" 2>&1;
   echo "exit $?" >> "$OUT/soak.log") &
  pids+=($!)
fi
if [ -z "${SKIP_SANITIZE:-}" ]; then
  (OUT="$WORK/sanitize" PYTHON=$PY PARALLEL=1 DIAGNOSE=1 TOOL_TIMEOUT=$TOOL_TIMEOUT \
     bash scripts/sanitize.sh > "$OUT/sanitize.txt" 2>&1; echo "exit $?" >> "$OUT/sanitize.txt") &
  pids+=($!)
fi
wait "${pids[@]}" 2>/dev/null

# -- 4. summary ----------------------------------------------------------------------------------
if [ -z "${SKIP_FUZZ:-}" ]; then
  say "== long hypothesis profile (HYPOTHESIS_PROFILE=long; examples run per fuzz test)"
  for k in "${!FUZZ_TESTS[@]}"; do
    log="$WORK/fuzz_$k.log"
    { echo "#### ${FUZZ_TESTS[$k]}"; cat "$log"; } >> "$OUT/fuzz.log"
    result=$(grep -E " in [0-9.]+s" "$log" | tail -1)
    counts=$(cat "$WORK/fuzz_counts_$k.json" 2>/dev/null)  # (at least every 50 examples)
    say "   ${FUZZ_TESTS[$k]}: ${counts:-no count}; ${result:-no result (see fuzz.log)};" \
        "$(tail -1 "$log")"
  done
fi
if [ -z "${SKIP_SOAK:-}" ]; then
  say "== soak ($(tail -1 "$OUT/soak.log"))"
  $PY - "$OUT/soak.json" <<'PY' 2>&1 | tee -a "$SUMMARY"
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except Exception as err:  # noqa: BLE001
    sys.exit(f"   no soak.json ({err})")
print(f"   {s['device_kind']}: {'flat' if s['ok'] else 'GROWING'}; tolerances host "
      f"{s['tolerance_host_mb']} MB, device {s['tolerance_device_mb']} MB; {s['seconds']} s"
      + (f"; NOT RUN (killed): {s['ops_left']}" if s["ops_left"] else ""))
for o in s["ops"]:
    dev = "n/a" if o["device_growth_mb"] is None else (
        f"{o['device_start']['bytes_in_use']} -> {o['device_end']['bytes_in_use']} MB")
    print(f"   {o['op']:17s} {o['calls']:6d} calls{'' if o['complete'] else ' (time-boxed)'} "
          f"{o['us_per_call']:7.1f} us/call; host {o['host_mb_start']} -> {o['host_mb_end']} MB; "
          f"device in use {dev}: {'ok' if o['ok'] else 'GROWING'}")
PY
fi
if [ -z "${SKIP_SANITIZE:-}" ]; then
  say "== compute-sanitizer"; sed 's/^/   /' "$OUT/sanitize.txt" | tee -a "$SUMMARY"
  for log in "$WORK"/sanitize/*.log; do  # keep the archive small: head and tail of long logs
    [ -f "$log" ] && [ "$(stat -c %s "$log")" -gt 4000000 ] && \
      { head -c 2000000 "$log"; echo; echo "[... cut ...]"; tail -c 1000000 "$log"; } > "$log.cut" \
      && mv "$log.cut" "$log"
  done
  tar -C "$WORK" -czf "$OUT/sanitize_logs.tar.gz" sanitize 2>/dev/null
fi
say "== total $((SECONDS - T0)) s"
rm -rf "$WORK"
