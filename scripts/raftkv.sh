#!/usr/bin/env bash
# raftkv: the replicated key-value store on etcd's raft that keeps its log
# and snapshots in sealwal (go/raftkv).
#
#   scripts/raftkv.sh build     installs what is missing, builds libsealwal
#                               and raftkv; prints the binary's path last
#   scripts/raftkv.sh cluster   builds, then runs three nodes on loopback
#                               until Ctrl-C: raft on ports 12379, 22379,
#                               32379, HTTP on 12380, 22380, 32380
#
# BUILD_DIR (default build/) is the CMake build to use. `cluster` keeps its
# stores in RAFTKV_DIR (default $BUILD_DIR/raftkv-cluster) and takes the
# unlock key from SEALWAL_UNLOCK_KEY, or makes one and prints it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
mkdir -p "$build"
build="$(cd "$build" && pwd)"  # absolute: go.sh runs from go/

usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

build_raftkv() {
  "$root/scripts/setup.sh"
  # Go and etcd's sources first (go.sh installs them), so that CMake finds go.
  bash "$root/scripts/go.sh" "$build" version >&2
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
  fi
  echo "raftkv: building libsealwal and the sealwal CLI" >&2
  cmake --build "$build" --target sealwal_c_shared sealwal >&2
  mkdir -p "$build/go-bin"
  echo "raftkv: building raftkv (go)" >&2
  bash "$root/scripts/go.sh" "$build" build -o "$build/go-bin/raftkv" sealwal.dev/go/raftkv >&2
  echo "$build/go-bin/raftkv"
}

case "${1:-}" in
  build)
    build_raftkv
    ;;
  cluster)
    bin="$(build_raftkv | tail -n 1)"
    dir="${RAFTKV_DIR:-$build/raftkv-cluster}"
    mkdir -p "$dir"
    if [ -z "${SEALWAL_UNLOCK_KEY:-}" ]; then
      key_file="$dir/unlock-key"
      if [ ! -f "$key_file" ]; then
        # The text form: SEALWAL-1- and 32 random bytes in unpadded base64url.
        (umask 077 && printf 'SEALWAL-1-%s\n' \
          "$(openssl rand 32 | base64 -w0 | tr '+/' '-_' | tr -d '=')" > "$key_file")
      fi
      SEALWAL_UNLOCK_KEY="$(cat "$key_file")"
      echo "raftkv: unlock key in $key_file (keep it: the stores open only with it)" >&2
    fi
    export SEALWAL_UNLOCK_KEY
    cluster="http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379"
    pids=()
    trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
    for i in 1 2 3; do
      "$bin" --id "$i" --cluster "$cluster" --port "${i}2380" --data-dir "$dir/node$i" \
        2>"$dir/node$i.log" &
      pids+=($!)
    done
    cat >&2 <<EOF
raftkv: three nodes on loopback, stores in $dir/node{1,2,3}, logs beside them.
  curl -X PUT -d hello 'http://127.0.0.1:12380/greeting?wait=1'
  curl http://127.0.0.1:22380/greeting
  SEALWAL_UNLOCK_KEY=... $build/tools/sealwal store rotate $dir/node1
Ctrl-C stops them.
EOF
    wait
    ;;
  -h|--help|help)
    usage
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
