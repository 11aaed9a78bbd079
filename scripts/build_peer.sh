#!/usr/bin/env bash
# Builds etcdwal-peer (go/etcdwal-peer: sealwal's etcd interop driver, over
# etcd 3.4's real wal/snap packages from Debian) into BUILD_DIR/go-bin and
# prints the binary's path as its last line. Skips the build when the binary
# is newer than every source file in go/etcdwal-peer (FORCE=1 rebuilds).
#
#   scripts/build_peer.sh [BUILD_DIR]     (default: build/)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "${1:-$root/build}"
build="$(cd "${1:-$root/build}" && pwd)"
out="$build/go-bin/etcdwal-peer"
src="$root/go/etcdwal-peer"

if [ -x "$out" ] && [ "${FORCE:-0}" != 1 ] && [ -z "$(find "$src" -newer "$out" -print -quit)" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$build/go-bin"
# Pure Go: no cgo, so it needs no build of the C API.
CGO_ENABLED=0 "$root/scripts/go.sh" "$build" build -o "$out" sealwal.dev/go/etcdwal-peer
echo "$out"
