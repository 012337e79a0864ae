#!/usr/bin/env bash
# Builds the two wheels of jax_robocache into dist/:
#   * a CPU wheel (no CUDA module: every op uses its jnp lowering), and
#   * a CUDA wheel whose kernels are compiled against the XLA FFI headers of
#     the OLDEST supported jaxlib (0.10.2), so that they load on every jaxlib
#     of the supported range (XLA keeps accepting handlers built against an
#     older FFI API; a handler built against newer headers than the running
#     jaxlib may be refused, which is why the runtime checks the version).
# Usage: bash scripts/build_wheel.sh [cpu|cuda|all]   (needs network for pip, or
#        a prepared environment with --no-build-isolation).
# Tags: the extension is a CPython-version-specific linux_x86_64 wheel; when
# auditwheel is installed it is repaired to a manylinux tag (cudart is linked
# statically, so no CUDA library has to be excluded).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
OLDEST_JAXLIB=0.10.2
mkdir -p dist

headers_of_oldest() {
  # The FFI headers of jaxlib $OLDEST_JAXLIB (a tiny download, no install).
  local dir=build/ffi-headers-$OLDEST_JAXLIB
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
  echo "$PWD/$dir"
}

if [ "$what" = cpu ] || [ "$what" = all ]; then
  CMAKE_ARGS="-DROBOCACHE_CUDA=OFF" python3 -m pip wheel --no-deps -w dist/cpu .
fi
if [ "$what" = cuda ] || [ "$what" = all ]; then
  inc=$(headers_of_oldest)
  CMAKE_ARGS="-DROBOCACHE_XLA_FFI_INCLUDE_DIR=$inc -DROBOCACHE_BUILT_JAXLIB=$OLDEST_JAXLIB ${CMAKE_ARGS:-}" \
    python3 -m pip wheel --no-deps -w dist/cuda .
fi
if command -v auditwheel >/dev/null; then
  for w in dist/cuda/*.whl; do [ -e "$w" ] && auditwheel repair -w dist/cuda "$w" || true; done
fi
ls -l dist/*/
