#!/usr/bin/env bash
# Installs what is missing, builds everything (and etcd's peer driver for
# the interop tests), then runs the whole ctest suite. The last lines are
# ctest's summary.
#
# Outside CI a missing etcd driver makes the interop tests skip (and say
# why). In CI ($CI=true) it fails the run: a green CI must mean that etcd's
# own code read what we wrote.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
"$root/scripts/setup.sh"

in_ci=0
[ "${CI:-}" = true ] && in_ci=1
missing_peer() {
  if [ "$in_ci" = 1 ]; then echo "test: $1; CI needs it, failing" >&2; exit 1; fi
  echo "test: $1; interop tests will skip" >&2
}

# etcd's own WAL code, built from Debian's golang-etcd-server-dev, checks
# our files.
peer="${SEALWAL_PEER_BIN:-}"
peer_script="$root/../shared/peers/etcdwal/build.sh"
if [ -n "$peer" ] && [ -x "$peer" ]; then
  :  # built already (.ci/run builds it once for both suites)
elif [ -f "$peer_script" ]; then
  mkdir -p "$build"
  if BINDIR="$build/peer-bin" bash "$peer_script" >"$build/peer.log" 2>&1; then
    peer="$build/peer-bin/etcdwal-peer"
  else
    peer=""
    missing_peer "etcdwal-peer could not be built (see $build/peer.log)"
  fi
else
  peer=""
  missing_peer "$peer_script not found"
fi
if [ "$in_ci" = 1 ]; then export SEALWAL_REQUIRE_PEER=1; fi

SEALWAL_CMAKE_ARGS="-DSEALWAL_PEER_BIN=$peer ${SEALWAL_CMAKE_ARGS:-}" "$root/scripts/build.sh"
cd "$build"
exec ctest --output-on-failure -j"$(nproc)" --timeout 900
