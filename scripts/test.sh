#!/usr/bin/env bash
# Installs what is missing, builds everything (and etcd's peer driver,
# go/etcdwal-peer, for the interop tests and etcd's fixtures), then runs the
# whole ctest suite. The last lines are ctest's summary.
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
  echo "test: $1; interop and etcd fixture tests will skip" >&2
}

# etcd's own WAL code (go/etcdwal-peer over Debian's golang-etcd-server-dev)
# checks our files; the build generates etcd's fixtures with it.
peer="${SEALWAL_PEER_BIN:-}"
mkdir -p "$build"
if [ -n "$peer" ] && [ -x "$peer" ]; then
  :  # built already (.ci/run builds it once for both suites)
elif peer="$("$root/scripts/build_peer.sh" "$build" 2>"$build/peer.log" | tail -n 1)" && [ -x "$peer" ]; then
  :
else
  peer=""
  missing_peer "etcdwal-peer could not be built (see $build/peer.log)"
fi
if [ "$in_ci" = 1 ]; then export SEALWAL_REQUIRE_PEER=1; fi

SEALWAL_CMAKE_ARGS="-DSEALWAL_PEER_BIN=$peer ${SEALWAL_CMAKE_ARGS:-}" "$root/scripts/build.sh"
cd "$build"
exec ctest --output-on-failure -j"$(nproc)" --timeout 900
