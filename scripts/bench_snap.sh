#!/usr/bin/env bash
# Snapshot benchmarks: sealwal's snap_bench beside etcd's own snapshotter
# (etcdwal-peer bench-snap, plaintext and swarmkit-style --encrypt secretbox),
# `dd ... conv=fdatasync` of the same sizes, and whole-process time and peak
# RSS of streamed saves and loads by the CLI next to etcd's, all in one run.
# Prints a ratio table.
#
#   scripts/bench_snap.sh BUILD_DIR        (a Release build with bench/snap_bench
#                                           and tools/sealwal)
# Environment:
#   BENCH_DIR   where files are written: keep it on the disk under test
#               (default: BUILD_DIR/tmp)
#   PEER        etcdwal-peer binary (default: scripts/build_peer.sh BUILD_DIR
#               builds go/etcdwal-peer into BUILD_DIR/go-bin)
#   SIZES_MIB   snapshot sizes (default "64 256 1024 4096")
#   ROUNDS      runs of each whole-process measurement (default 3; medians)
# Raw results go to BUILD_DIR/bench-results/snap/. MB = 1e6 bytes. The
# machines are shared and noisy: read the ratios, not the absolutes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)"
tmp="${BENCH_DIR:-$build/tmp}"
out="$build/bench-results/snap"
sizes="${SIZES_MIB:-64 256 1024 4096}"
rounds="${ROUNDS:-3}"
mkdir -p "$tmp" "$out"
rm -f "$out"/*

bench="$build/bench/snap_bench"
cli="$build/tools/sealwal"
[ -x "$bench" ] || { echo "bench_snap: $bench missing (build with -DSEALWAL_BUILD_BENCH=ON)" >&2; exit 1; }
[ -x "$cli" ] || { echo "bench_snap: $cli missing" >&2; exit 1; }
peer="${PEER:-}"
if [ -z "$peer" ]; then
  peer="$("$root/scripts/build_peer.sh" "$build" 2>"$build/peer.log" | tail -n 1)" && [ -x "$peer" ] ||
    { echo "bench_snap: etcdwal-peer could not be built (see $build/peer.log)" >&2; exit 1; }
fi
timer=/usr/bin/time
[ -x "$timer" ] || { echo "bench_snap: /usr/bin/time is needed for peak RSS (apt-get install time)" >&2; exit 1; }

# 1. sealwal: inline and streamed, save and load, plaintext and AES-256-GCM.
echo "bench_snap: snap_bench" >&2
SEALWAL_BENCH_DIR="$tmp" "$bench" --benchmark_format=json --benchmark_out="$out/snap_bench.json" \
  --benchmark_out_format=json >/dev/null

# 2. etcd's snapshotter (Go), plain and swarmkit-style secretbox; with peak
#    RSS. Both hold the whole snapshot in memory (etcd at 4 GiB: ~17 GiB of
#    RSS), so the swarmkit-style one, which adds copies, stops at 1 GiB.
for r in $(seq 1 "$rounds"); do
  for mib in $sizes; do
    for enc in none secretbox; do
      [ "$enc" = secretbox ] && [ "$mib" -gt 1024 ] && continue
      echo "bench_snap: round $r etcd bench-snap ${mib} MiB encrypt=$enc" >&2
      d="$tmp/peer-snap"
      rm -rf "$d"
      args=(bench-snap --dir "$d" --size $((mib << 20)))
      [ "$enc" = none ] || args+=(--encrypt "$enc")
      "$timer" -f '%M' -o "$out/rss.txt" "$peer" "${args[@]}" >"$out/peer.json"
      python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); j["peak_rss_mib"]=int(open(sys.argv[2]).read().split()[0])/1024; j["round"]=int(sys.argv[3]); print(json.dumps(j))' \
        "$out/peer.json" "$out/rss.txt" "$r" >>"$out/peer.jsonl"
      rm -rf "$d"
    done
  done
done

# 3. dd with fdatasync: the disk's sequential write bandwidth.
for r in $(seq 1 "$rounds"); do
  for mib in $sizes; do
    echo "bench_snap: round $r dd ${mib} MiB" >&2
    sync
    dd if=/dev/zero of="$tmp/dd.bin" bs=1M count="$mib" conv=fdatasync 2>&1 | tail -1 |
      awk -v m="$mib" '{for (i = 1; i <= NF; i++) if ($i == "s," || $i == "s") s = $(i-1);
                         print "{\"mib\":" m ",\"seconds\":" s "}"}' >>"$out/dd.jsonl"
    rm -f "$tmp/dd.bin"
  done
done

# 4. Whole-process streamed save and load with the sealwal CLI (data made
#    and checked on the fly), plaintext and encrypted: time and peak RSS.
printf '\x42%.0s' $(seq 32) >"$tmp/rss.dek"
for r in $(seq 1 "$rounds"); do
  for mib in $sizes; do
    for enc in plain aes; do
      d="$tmp/rss-snap"
      rm -rf "$d"
      key=()
      [ "$enc" = plain ] || key=(--dek-file "$tmp/rss.dek")
      echo "bench_snap: round $r sealwal streamed ${mib} MiB save/load ($enc)" >&2
      "$timer" -f '%M %e' -o "$out/save.txt" "$cli" snap save "$d" --index 1 --term 1 \
        --size $((mib << 20)) --seed 1 --stream "${key[@]}" >/dev/null
      "$timer" -f '%M %e' -o "$out/load.txt" "$cli" snap load "$d" --expect-seed 1 \
        "${key[@]}" >/dev/null
      read -r save_rss save_s <"$out/save.txt"
      read -r load_rss load_s <"$out/load.txt"
      echo "{\"op\":\"snap-cli\",\"round\":$r,\"mib\":$mib,\"encrypt\":\"$enc\",\"save_s\":$save_s,\"save_rss_kib\":$save_rss,\"load_s\":$load_s,\"load_rss_kib\":$load_rss}" >>"$out/cli.jsonl"
      rm -rf "$d"
    done
  done
done
rm -f "$tmp/rss.dek" "$out/save.txt" "$out/load.txt" "$out/rss.txt" "$out/peer.json"

python3 - "$out" "$sizes" "$root/scripts" <<'PY'
import json, sys, os, statistics
out, sizes = sys.argv[1], [int(s) for s in sys.argv[2].split()]
sys.path.insert(0, sys.argv[3])
import bench_util
med = statistics.median
bench = {}  # in-process snap_bench (64 MiB and 1 GiB), MB/s
for b in json.load(open(os.path.join(out, "snap_bench.json")))["benchmarks"]:
    if b.get("run_type", "iteration") != "iteration" or "error_occurred" in b:
        continue
    parts = b["name"].split("/")
    mib = int(parts[1].split(":")[1]); enc = parts[2].split(":")[1] == "1"
    bench[(parts[0], mib, enc)] = b["bytes_per_second"] / 1e6
peer = {}  # (mib, encrypt) -> [runs]
for line in open(os.path.join(out, "peer.jsonl")):
    j = json.loads(line)
    peer.setdefault((j["size"] >> 20, j["encrypt"]), []).append(j)
cli = {}  # (mib, plain|aes) -> [runs]
for line in open(os.path.join(out, "cli.jsonl")):
    j = json.loads(line)
    cli.setdefault((j["mib"], j["encrypt"]), []).append(j)
dd = bench_util.dd_mb_per_s(json.loads(l) for l in open(os.path.join(out, "dd.jsonl")))
nan = float("nan")
def g(k): return bench.get(k, nan)
def mbps(mib, secs): return (mib << 20) / 1e6 / secs if secs else nan

print()
print("Whole processes (medians; MB/s, MB = 1e6 bytes; peak RSS MiB). sealwal: `snap save/load")
print("--stream` (separate processes); etcd/swarmkit: one process saves then loads (RSS of both)")
print(f"{'size':>6} {'what':<22} {'save MB/s':>9} {'load MB/s':>9} {'save RSS':>8} {'load RSS':>8}  ratios")
for mib in sizes:
    e = peer.get((mib, "none")); w = peer.get((mib, "secretbox"))
    for enc, name, other in (("plain", "sealwal streamed", e), ("aes", "sealwal streamed AES", w)):
        rs = cli.get((mib, enc))
        if not rs:
            continue
        sv, ld = mbps(mib, med(r["save_s"] for r in rs)), mbps(mib, med(r["load_s"] for r in rs))
        r = [f"save {sv / dd[mib]:.2f}x dd"]
        if other:
            pn = "etcd" if enc == "plain" else "swarmkit"
            r.append(f"save {sv / med(x['save_mb_per_s'] for x in other):.2f}x {pn}")
            r.append(f"load {ld / med(x['load_mb_per_s'] for x in other):.2f}x {pn}")
        print(f"{mib:>4}Mi {name:<22} {sv:9.0f} {ld:9.0f} {max(r_['save_rss_kib'] for r_ in rs) / 1024:8.0f}"
              f" {max(r_['load_rss_kib'] for r_ in rs) / 1024:8.0f}  " + ", ".join(r))
    for runs, name in ((e, "etcd"), (w, "swarmkit-style")):
        if runs:
            print(f"{mib:>4}Mi {name:<22} {med(x['save_mb_per_s'] for x in runs):9.0f}"
                  f" {med(x['load_mb_per_s'] for x in runs):9.0f} {max(x['peak_rss_mib'] for x in runs):8.0f}"
                  f" {'(same)':>8}")
    print(f"{mib:>4}Mi {'dd conv=fdatasync':<22} {dd[mib]:9.0f}")
print()
print("In-process (snap_bench, page cache warm), MB/s")
for mib in (64, 1024):
    for op in ("BM_SnapSave", "BM_SnapLoad", "BM_StreamSave", "BM_StreamLoad"):
        print(f"{mib:>4}Mi {op:<14} plaintext {g((op, mib, False)):7.0f}  AES-256-GCM {g((op, mib, True)):7.0f}")
print()
t = []
s64 = med(x["load_mb_per_s"] for x in peer.get((64, "secretbox"), [{"load_mb_per_s": nan}]))
for op, what in (("BM_SnapLoad", "inline .snap"), ("BM_StreamLoad", "streamed")):
    v = g((op, 64, True))
    t.append(f"encrypted 64 MiB load, {what}: {v:.0f} MB/s (target >= 1000) = {v / s64:.1f}x swarmkit-style (target >= 5x)")
for mib in (64, 1024):
    if mib in dd:
        t.append(f"streamed {mib} MiB save: plaintext {g(('BM_StreamSave', mib, False)) / dd[mib]:.2f}x dd, "
                 f"encrypted {g(('BM_StreamSave', mib, True)) / dd[mib]:.2f}x dd (target >= 0.8x)")
print("Targets:\n  " + "\n  ".join(t))
PY
