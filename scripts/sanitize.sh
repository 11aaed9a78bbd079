#!/usr/bin/env bash
# Builds everything with AddressSanitizer + UndefinedBehaviorSanitizer and
# runs the whole ctest suite under them. With clang the same build also holds
# the libFuzzer targets, so CI can run `scripts/fuzz.sh` on it without a
# second build (BUILD_DIR=build-asan FUZZ_WITH_TESTS=ON scripts/fuzz.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build-asan}"
"$root/scripts/setup.sh"

peer="${SEALWAL_PEER_BIN:-}"
if [ -z "$peer" ] && [ -x "$root/build/peer-bin/etcdwal-peer" ]; then peer="$root/build/peer-bin/etcdwal-peer"; fi

fuzz=OFF
if command -v clang++ >/dev/null; then export CC=clang CXX=clang++; fuzz=ON; fi
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEALWAL_SANITIZE=ON \
  -DSEALWAL_BUILD_FUZZ="$fuzz" -DSEALWAL_BUILD_BENCH=OFF -DSEALWAL_PEER_BIN="$peer" >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
exec ctest --output-on-failure -j"$(nproc)" --timeout 1200
