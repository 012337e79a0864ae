#!/usr/bin/env bash
# Builds the two wheels of jax_robocache into dist/:
#   * dist/cpu/: the CPU wheel, pure Python (py3-none-any): no CUDA module, every op
#     uses its jnp lowering;
#   * dist/cuda/: the CUDA wheel, one per Python interpreter (the nanobind module is
#     CPython-version specific: cp3XX-cp3XX-linux_x86_64), kernels for sm_80 and sm_90
#     plus compute_90 PTX, compiled against the XLA FFI headers of the OLDEST
#     supported jaxlib (0.10.2) so that they load on every jaxlib of the supported
#     range (0.10.2 .. <0.13): XLA accepts FFI handlers built against an older
#     API version of its C API (the call frame carries the API version and
#     struct sizes), while a handler built against newer headers than the
#     running jaxlib may not work, which is why _core/extension.py refuses to register
#     kernels on a jaxlib older than the one they were built against.
# Usage: bash scripts/build_wheel.sh [cpu|cuda|all]
# Env: PYTHONS       interpreters to build the CUDA wheel for (default: python3); each needs
#                    scikit-build-core and nanobind (and jax for the CPU wheel's build)
#      FFI_HEADERS   a directory holding xla/ffi/api/*.h of jaxlib 0.10.2 (default: the
#                    cache build/ffi-headers-0.10.2, filled by `pip download jaxlib==0.10.2`)
#      BUILD_ISOLATION=1  let pip build in an isolated environment (needs network)
#      CMAKE_ARGS    extra CMake arguments (say -DCMAKE_CUDA_ARCHITECTURES=90-real)
# SBOM: next to every wheel, <wheel>.cdx.json (CycloneDX 1.5, scripts/sbom.py): its Python
# dependencies and, for the CUDA wheels, what the compiled module reports it was built with
# (static CUDA runtime and its version, nanobind, the FFI headers' jaxlib, architectures).
# Tags: when auditwheel is installed the CUDA wheels are repaired to a manylinux tag
# (cudart is linked statically, so no CUDA library has to be excluded); otherwise
# they keep linux_x86_64 (the module needs glibc >= 2.34 when built on a newer system).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
OLDEST_JAXLIB=0.10.2
mkdir -p dist/cpu dist/cuda
PIP_ARGS=(--no-deps)
[ -n "${BUILD_ISOLATION:-}" ] || PIP_ARGS+=(--no-build-isolation)

headers_of_oldest() {
  # The FFI headers of jaxlib $OLDEST_JAXLIB (a tiny download, no install).
  local dir=${FFI_HEADERS:-build/ffi-headers-$OLDEST_JAXLIB}
  if [ ! -f "$dir/xla/ffi/api/ffi.h" ]; then
    local tmp; tmp=$(mktemp -d)
    python3 -m pip download --no-deps --only-binary=:all: -d "$tmp" "jaxlib==$OLDEST_JAXLIB" >&2
    mkdir -p "$dir"
    python3 - "$tmp"/jaxlib-*.whl "$dir" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith("jaxlib/include/xla/ffi/api/"):
            z.extract(name, out + "/_x")
PY
    mv "$dir/_x/jaxlib/include/xla" "$dir/" && rm -rf "$dir/_x" "$tmp"
  fi
  (cd "$dir" && pwd)
}

if [ "$what" = cpu ] || [ "$what" = all ]; then
  # No CUDA module: a pure-Python wheel, installable on every Python and platform.
  out=$(mktemp -d)
  CMAKE_ARGS="-DROBOCACHE_CUDA=OFF" python3 -m pip wheel "${PIP_ARGS[@]}" \
    -C wheel.py-api=py3 -C wheel.platlib=false -w "$out" .
  for w in "$out"/*.whl; do
    python3 scripts/sbom.py "$w"
    mv -f "$w" "$w.cdx.json" dist/cpu/
  done
  rm -rf "$out"
fi
if [ "$what" = cuda ] || [ "$what" = all ]; then
  inc=$(headers_of_oldest)
  for py in ${PYTHONS:-python3}; do
    # One interpreter at a time in its own folder: its SBOM is written by the same
    # interpreter (it imports the wheel's module), after the repair that renames the wheel.
    out=$(mktemp -d)
    CMAKE_ARGS="-DROBOCACHE_XLA_FFI_INCLUDE_DIR=$inc -DROBOCACHE_BUILT_JAXLIB=$OLDEST_JAXLIB ${CMAKE_ARGS:-}" \
      "$py" -m pip wheel "${PIP_ARGS[@]}" -w "$out" .
    if command -v auditwheel >/dev/null; then
      for w in "$out"/*-linux_x86_64.whl; do
        [ -e "$w" ] && auditwheel repair -w "$out" "$w" && rm "$w"
      done
    fi
    for w in "$out"/*.whl; do
      "$py" scripts/sbom.py "$w"
      mv -f "$w" "$w.cdx.json" dist/cuda/
    done
    rm -rf "$out"
  done
fi
ls -l dist/*/
