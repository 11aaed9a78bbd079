#!/usr/bin/env bash
# Configures and builds sealwal into $BUILD_DIR (default: build/).
# Extra arguments go to `cmake --build` (e.g. --target sealwal).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
  ${SEALWAL_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)" "$@"
