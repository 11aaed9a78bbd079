#!/usr/bin/env bash
# Runs sealwal's benchmarks beside etcd's own code (the etcdwal-peer driver)
# and the machine's raw limits, in the same run, and prints ratios.
#
#   scripts/bench.sh [wal|encryption|snap|recovery|pipeline|all]     (default: all)
#
# pipeline: whole-process `sealwal wal gen`, synchronous and --pipeline 16,
# plaintext and encrypted, against etcd's WAL (scripts/bench_pipeline.py).
#
# recovery: whole-process `sealwal store verify` of 1.1 M x 1 KiB encrypted
# entries against etcd's ReadAll (scripts/bench_recovery.py).
#
# Environment:
#   ROUNDS       rounds per measurement; each figure is the median (default 3)
#   BENCH_DIR    where WAL files are written: keep it on the disk under test
#                (default: build-bench/tmp)
#   BUILD_DIR    build directory (default: build-bench, Release)
# Raw results (JSON) are kept in $BUILD_DIR/bench-results/ for plotting.
# The machines are shared and noisy: read the ratios, not the absolutes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
what="${1:-all}"
case "$what" in wal|encryption|snap|recovery|pipeline|all) ;;
  *) echo "usage: $0 [wal|encryption|snap|recovery|pipeline|all]" >&2; exit 2 ;; esac
rounds="${ROUNDS:-3}"
build="${BUILD_DIR:-$root/build-bench}"
tmp="${BENCH_DIR:-$build/tmp}"
out="$build/bench-results"

"$root/scripts/setup.sh"
if ! command -v python3 >/dev/null; then  # only the report needs it
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3 >/dev/null
fi
BUILD_DIR="$build" BUILD_TYPE=Release SEALWAL_CMAKE_ARGS="-DSEALWAL_BUILD_TESTS=OFF -DSEALWAL_BUILD_FUZZ=OFF" \
  "$root/scripts/build.sh" >/dev/null
peer="$("$root/scripts/build_peer.sh" "$build" 2>"$build/peer.log" | tail -n 1)" && [ -x "$peer" ] ||
  { echo "bench: etcdwal-peer could not be built (see $build/peer.log)" >&2; exit 1; }
rm -rf "$out" && mkdir -p "$out" "$tmp"

# Entries per run at each batch size: the same for both sides.
entries_for() { case "$1" in 1) echo 3000 ;; 10) echo 20000 ;; 100) echo 100000 ;; *) echo 200000 ;; esac; }

peer_append() {  # peer_append ROUND BATCH [extra peer args...]
  local r="$1" b="$2"; shift 2
  local d="$tmp/peer-append"
  rm -rf "$d"
  "$peer" bench-append --dir "$d" --entries "$(entries_for "$b")" --size 1024 --batch "$b" "$@" \
    >>"$out/peer-$r.jsonl"
  rm -rf "$d"
}

peer_read() {  # peer_read ROUND [extra peer args...]
  local r="$1"; shift
  local d="$tmp/peer-read"
  rm -rf "$d"
  "$peer" bench-append --dir "$d" --entries 100000 --size 1024 --batch 1000 "$@" >/dev/null
  sync  # as our ReadAll benchmarks do: measure reading, not writeback
  "$peer" bench-read --dir "$d" "$@" >>"$out/peer-$r.jsonl"
  rm -rf "$d"
}

{ [ "$what" = snap ] || [ "$what" = recovery ] || [ "$what" = pipeline ]; } && rounds=0
for r in $(seq 1 "$rounds"); do
  echo "bench: round $r/$rounds" >&2
  if [ "$what" = wal ] || [ "$what" = all ]; then
    SEALWAL_BENCH_DIR="$tmp" "$build/bench/wal_bench" --benchmark_format=json \
      --benchmark_out="$out/wal-$r.json" --benchmark_out_format=json >/dev/null
    for b in 1 10 100 1000; do peer_append "$r" "$b"; done
    peer_read "$r"
  fi
  if [ "$what" = encryption ] || [ "$what" = all ]; then
    if [ -x "$build/bench/encryption_bench" ]; then
      SEALWAL_BENCH_DIR="$tmp" "$build/bench/encryption_bench" --benchmark_format=json \
        --benchmark_filter="BM_Seal|BM_WalAppend|BM_WalReadAll" \
        --benchmark_out="$out/encryption-$r.json" --benchmark_out_format=json >/dev/null
    fi
    for b in 1 10 100 1000; do peer_append "$r" "$b" --encrypt secretbox; done
    peer_read "$r" --encrypt secretbox
    for s in 64 1024 16384; do
      openssl speed -evp aes-256-gcm -seconds 1 -bytes "$s" 2>/dev/null | tail -1 |
        awk -v s="$s" '{print "{\"op\":\"openssl-speed\",\"size\":" s ",\"kbytes_per_s\":\"" $2 "\"}"}' \
        >>"$out/openssl-$r.jsonl"
    done
  fi
done

if [ "$what" != snap ] && [ "$what" != recovery ] && [ "$what" != pipeline ]; then python3 "$root/scripts/bench_report.py" "$out" "$what"; fi
# Snapshots have their own driver (sizes up to 1 GiB, peak RSS, dd).
if [ "$what" = snap ] || [ "$what" = all ]; then
  BENCH_DIR="$tmp" PEER="$peer" bash "$root/scripts/bench_snap.sh" "$build"
fi
# Recovery: whole processes, with peak RSS (store verify vs etcd ReadAll).
if [ "$what" = recovery ] || [ "$what" = all ]; then
  python3 "$root/scripts/bench_recovery.py" "$build/tools/sealwal" "$peer" "$tmp" \
    "$out/recovery.jsonl" "${RECOVERY_ENTRIES:-1100000}" "${ROUNDS:-3}"
fi
# Pipelined appends: whole processes, ratios in the same run.
if [ "$what" = pipeline ] || [ "$what" = all ]; then
  python3 "$root/scripts/bench_pipeline.py" "$build/tools/sealwal" "$peer" "$tmp" \
    "$out/pipeline.jsonl" "${ROUNDS:-3}"
fi
