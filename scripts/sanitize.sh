#!/usr/bin/env bash
# Builds everything with AddressSanitizer + UndefinedBehaviorSanitizer and
# runs the whole ctest suite under them. With clang the same build also holds
# the libFuzzer targets, so CI can run `scripts/fuzz.sh` on it without a
# second build (BUILD_DIR=build-asan FUZZ_WITH_TESTS=ON scripts/fuzz.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build-asan}"
"$root/scripts/setup.sh"

# etcd's driver: the interop tests run it and the build generates etcd's
# fixtures with it. Built here unless given; without it those tests skip.
peer="${SEALWAL_PEER_BIN:-}"
if [ -z "$peer" ]; then
  mkdir -p "$build"
  peer="$("$root/scripts/build_peer.sh" "$build" 2>"$build/peer.log" | tail -n 1)" && [ -x "$peer" ] ||
    { peer=""; echo "sanitize: etcdwal-peer could not be built (see $build/peer.log); interop and etcd fixture tests will skip" >&2; }
fi

fuzz=OFF
if command -v clang++ >/dev/null; then export CC=clang CXX=clang++; fuzz=ON; fi
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEALWAL_SANITIZE=ON \
  -DSEALWAL_BUILD_FUZZ="$fuzz" -DSEALWAL_BUILD_BENCH=OFF -DSEALWAL_PEER_BIN="$peer" >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
exec ctest --output-on-failure -j"$(nproc)" --timeout 1200
