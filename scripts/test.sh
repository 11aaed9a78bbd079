#!/usr/bin/env bash
# Installs what is missing, builds everything (and etcd's peer driver for
# the interop tests), then runs the whole ctest suite. The last lines are
# ctest's summary.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
"$root/scripts/setup.sh"

# etcd's own WAL code, built from Debian's golang-etcd-server-dev, checks
# our files. Without it the interop tests skip and say why.
peer=""
peer_script="$root/../shared/peers/etcdwal/build.sh"
if [ -f "$peer_script" ]; then
  mkdir -p "$build"
  if BINDIR="$build/peer-bin" bash "$peer_script" >"$build/peer.log" 2>&1; then
    peer="$build/peer-bin/etcdwal-peer"
  else
    echo "test: etcdwal-peer could not be built (see $build/peer.log); interop tests will skip" >&2
  fi
else
  echo "test: $peer_script not found; interop tests will skip" >&2
fi

SEALWAL_CMAKE_ARGS="-DSEALWAL_PEER_BIN=$peer ${SEALWAL_CMAKE_ARGS:-}" "$root/scripts/build.sh"
cd "$build"
exec ctest --output-on-failure -j"$(nproc)" --timeout 900
