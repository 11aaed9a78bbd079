#!/usr/bin/env bash
# The project's performance record: sealwal's benchmarks beside etcd's own
# code (the etcdwal-peer driver), the swarmkit-style scheme and the machine's
# raw limits, in the same run; prints ratios, writes the record
# bench/results/<date>-<host>[-<part>].json and, for a whole run, draws its
# charts into docs/performance/ (scripts/plot.sh). docs/performance.md
# explains every figure.
#
#   scripts/bench.sh [PART]     PART: wal encryption append snap recovery
#                               pipeline raftkv, or all (the default)
#
# append: whole processes, entry sizes 64 B..256 KiB x batches 1..1000,
#   sealwal plaintext/AES-256-GCM/ChaCha20-Poly1305, synchronous and
#   pipelined, etcd, swarmkit-style, bare write+fdatasync loops
#   (scripts/bench_append.py).
# wal, encryption: in-process Google Benchmark loops (warm cache) and the
#   peer's, openssl speed for the crypto cost (scripts/bench_report.py).
# snap: 64 MiB..4 GiB (scripts/bench_snap.sh).
# recovery: `store verify` against etcd's ReadAll as the WAL grows from
#   64 MiB to 2 GiB, warm and cold cache (scripts/bench_recovery.py).
# pipeline: the pipelined-append ratios, interleaved (scripts/bench_pipeline.py).
# raftkv: three-node raftkv on sealwal and on etcd's wal/snap
#   (scripts/bench_raftkv.sh).
#
# Environment:
#   ROUNDS       rounds per measurement; each figure is the median (default 3)
#   BENCH_DIR    where WAL files are written: keep it on the disk under test
#                (default: build-bench/tmp)
#   BUILD_DIR    build directory (default: build-bench, Release)
#   RECOVERY_MIB WAL sizes for recovery (default 64,256,1024,2048)
#   SIZES_MIB    snapshot sizes (default "64 256 1024 4096")
#   RAFTKV_SECONDS  seconds per raftkv run (default 15)
# Raw results (JSON) are kept in $BUILD_DIR/bench-results/.
# The machines are shared and noisy: read the ratios, not the absolutes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
what="${1:-all}"
usage="usage: $0 [wal|encryption|append|snap|recovery|pipeline|raftkv|all]"
case "$what" in wal|encryption|append|snap|recovery|pipeline|raftkv|all) ;;
  -h|--help) echo "$usage"; sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "$usage" >&2; exit 2 ;; esac
started="$(date -u +%Y-%m-%d)"
rounds="${ROUNDS:-3}"
build="${BUILD_DIR:-$root/build-bench}"
tmp="${BENCH_DIR:-$build/tmp}"
out="$build/bench-results"

"$root/scripts/setup.sh"
# Peak RSS comes from /usr/bin/time; raftkv's readiness probe uses curl.
# The drivers, the record and the report are python3.
{ [ -x /usr/bin/time ] && command -v curl >/dev/null && command -v python3 >/dev/null; } ||
  "$root/scripts/setup.sh" time curl python3
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

part() { [ "$what" = "$1" ] || [ "$what" = all ]; }
loop_rounds="$rounds"
{ part wal || part encryption; } || loop_rounds=0
for r in $(seq 1 "$loop_rounds"); do
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
        --benchmark_filter="BM_Seal|BM_Open/|BM_WalAppend|BM_WalReadAll" \
        --benchmark_out="$out/encryption-$r.json" --benchmark_out_format=json >/dev/null
    fi
    for b in 1 10 100 1000; do peer_append "$r" "$b" --encrypt secretbox; done
    peer_read "$r" --encrypt secretbox
    # The crypto floor: OpenSSL's own per-record AEAD loop (-aead: nonce, AAD,
    # data and tag for every record, as a seal does), same algorithm and size.
    for alg in aes-256-gcm chacha20-poly1305; do
      for dir in encrypt decrypt; do
        for s in 64 1024 16384; do
          flag=(); [ "$dir" = decrypt ] && flag=(-decrypt)
          openssl speed -aead "${flag[@]}" -evp "$alg" -seconds 1 -bytes "$s" 2>/dev/null | tail -1 |
            awk -v s="$s" -v a="$alg" -v d="$dir" '{print "{\"op\":\"openssl-speed\",\"alg\":\"" a "\",\"dir\":\"" d "\",\"size\":" s ",\"kbytes_per_s\":\"" $2 "\"}"}' \
            >>"$out/openssl-$r.jsonl"
        done
      done
    done
  fi
done

if [ "$loop_rounds" -gt 0 ]; then python3 "$root/scripts/bench_report.py" "$out" "$what"; fi
# The append matrix: whole processes, every variant in every round.
if part append; then
  python3 "$root/scripts/bench_append.py" "$build/tools/sealwal" "$peer" "$tmp" \
    "$out/append.jsonl" "$rounds"
fi
# Snapshots have their own driver (sizes up to 4 GiB, peak RSS, dd).
if part snap; then
  BENCH_DIR="$tmp" PEER="$peer" ROUNDS="$rounds" bash "$root/scripts/bench_snap.sh" "$build"
fi
# Recovery: whole processes, with peak RSS (store verify vs etcd ReadAll).
if part recovery; then
  python3 "$root/scripts/bench_recovery.py" "$build/tools/sealwal" "$peer" "$tmp" \
    "$out/recovery.jsonl" "${RECOVERY_MIB:-64,256,1024,2048}" "$rounds"
fi
# Pipelined appends: whole processes, ratios in the same run.
if part pipeline; then
  python3 "$root/scripts/bench_pipeline.py" "$build/tools/sealwal" "$peer" "$tmp" \
    "$out/pipeline.jsonl" "$rounds"
fi
# End to end: raftkv on sealwal and on etcd's wal/snap (needs Go: scripts/go.sh).
if part raftkv; then
  OUT="$out/raftkv.jsonl" ROUNDS="$rounds" RUN_SECONDS="${RAFTKV_SECONDS:-15}" \
    bash "$root/scripts/bench_raftkv.sh" "$build"
fi

# The record: every figure of this run, the machine, the commit, the targets.
suffix=""; [ "$what" = all ] || suffix="-$what"
record="$root/bench/results/$started-$(hostname -s)$suffix.json"
python3 "$root/scripts/bench_record.py" "$out" "$record" "scripts/bench.sh $what (ROUNDS=$rounds)"
[ "$what" = all ] && "$root/scripts/plot.sh" "$record"
echo "bench: record $record" >&2
