#!/usr/bin/env bash
# Snapshot benchmarks: sealwal's snap_bench beside etcd's own snapshotter
# (etcdwal-peer bench-snap, plaintext and swarmkit-style --encrypt secretbox),
# `dd ... conv=fdatasync` of the same sizes, and the peak RSS of a streamed
# 1 GiB save and load next to etcd's, all in one run. Prints a ratio table.
#
#   scripts/bench_snap.sh BUILD_DIR        (a Release build with bench/snap_bench
#                                           and tools/sealwal)
# Environment:
#   BENCH_DIR   where files are written: keep it on the disk under test
#               (default: BUILD_DIR/tmp)
#   PEER        etcdwal-peer binary (default: scripts/build_peer.sh BUILD_DIR
#               builds go/etcdwal-peer into BUILD_DIR/go-bin)
#   SIZES_MIB   snapshot sizes (default "64 1024")
# Raw results go to BUILD_DIR/bench-results/snap/. MB = 1e6 bytes. The
# machines are shared and noisy: read the ratios, not the absolutes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)"
tmp="${BENCH_DIR:-$build/tmp}"
out="$build/bench-results/snap"
sizes="${SIZES_MIB:-64 1024}"
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

# 2. etcd's snapshotter (Go), plain and swarmkit-style secretbox; with peak RSS.
for mib in $sizes; do
  for enc in none secretbox; do
    echo "bench_snap: etcd bench-snap ${mib} MiB encrypt=$enc" >&2
    d="$tmp/peer-snap"
    rm -rf "$d"
    args=(bench-snap --dir "$d" --size $((mib << 20)))
    [ "$enc" = none ] || args+=(--encrypt "$enc")
    "$timer" -f '%M' -o "$out/peer-rss-$mib-$enc.txt" "$peer" "${args[@]}" >>"$out/peer.jsonl"
    rm -rf "$d"
  done
done

# 3. dd with fdatasync: the disk's sequential write bandwidth.
for mib in $sizes; do
  echo "bench_snap: dd ${mib} MiB" >&2
  sync
  dd if=/dev/zero of="$tmp/dd.bin" bs=1M count="$mib" conv=fdatasync 2>&1 | tail -1 |
    awk -v m="$mib" '{for (i = 1; i <= NF; i++) if ($i == "s," || $i == "s") s = $(i-1);
                       print "{\"mib\":" m ",\"seconds\":" s "}"}' >>"$out/dd.jsonl"
  rm -f "$tmp/dd.bin"
done

# 4. Peak RSS of the sealwal CLI saving and loading a streamed 1 GiB snapshot
#    (data generated and checked on the fly), plaintext and encrypted.
printf '\x42%.0s' $(seq 32) >"$tmp/rss.dek"
for enc in plain aes; do
  d="$tmp/rss-snap"
  rm -rf "$d"
  key=()
  [ "$enc" = plain ] || key=(--dek-file "$tmp/rss.dek")
  echo "bench_snap: sealwal streamed 1 GiB save/load RSS ($enc)" >&2
  "$timer" -f '%M %e' -o "$out/rss-save-$enc.txt" "$cli" snap save "$d" --index 1 --term 1 \
    --size 1073741824 --seed 1 --stream "${key[@]}" >/dev/null
  "$timer" -f '%M %e' -o "$out/rss-load-$enc.txt" "$cli" snap load "$d" --expect-seed 1 \
    "${key[@]}" >/dev/null
  rm -rf "$d"
done
rm -f "$tmp/rss.dek"

python3 - "$out" "$sizes" <<'PY'
import json, sys, os
out, sizes = sys.argv[1], [int(s) for s in sys.argv[2].split()]
bench = {}
for b in json.load(open(os.path.join(out, "snap_bench.json")))["benchmarks"]:
    if b.get("run_type", "iteration") != "iteration" or "error_occurred" in b:
        continue
    parts = b["name"].split("/")
    mib = int(parts[1].split(":")[1]); enc = parts[2].split(":")[1] == "1"
    bench[(parts[0], mib, enc)] = b["bytes_per_second"] / 1e6
peer = {}
for line in open(os.path.join(out, "peer.jsonl")):
    j = json.loads(line)
    mib = j["size"] >> 20
    rss = int(open(os.path.join(out, f"peer-rss-{mib}-{j['encrypt']}.txt")).read().split()[0])
    peer[(mib, j["encrypt"])] = (j["save_mb_per_s"], j["load_mb_per_s"], rss)
dd = {}
for line in open(os.path.join(out, "dd.jsonl")):
    j = json.loads(line)
    dd[j["mib"]] = (j["mib"] << 20) / 1e6 / float(j["seconds"])

def g(k): return bench.get(k, float("nan"))
print()
print("Snapshot save/load, MB/s (MB = 1e6 bytes); ratios in brackets")
print(f"{'size':>6} {'what':<34} {'sealwal':>9} {'etcd':>9} {'swarmkit':>9} {'dd':>8}  ratios")
for mib in sizes:
    pe = peer.get((mib, "none"), (float("nan"),) * 3)
    ps = peer.get((mib, "secretbox"), (float("nan"),) * 3)
    d = dd.get(mib, float("nan"))
    rows = [
        ("save inline plaintext", g(("BM_SnapSave", mib, False)), pe[0], None),
        ("save inline AES-256-GCM", g(("BM_SnapSave", mib, True)), None, ps[0]),
        ("save streamed plaintext", g(("BM_StreamSave", mib, False)), pe[0], None),
        ("save streamed AES-256-GCM", g(("BM_StreamSave", mib, True)), None, ps[0]),
        ("load inline plaintext", g(("BM_SnapLoad", mib, False)), pe[1], None),
        ("load inline AES-256-GCM", g(("BM_SnapLoad", mib, True)), None, ps[1]),
        ("load streamed plaintext", g(("BM_StreamLoad", mib, False)), pe[1], None),
        ("load streamed AES-256-GCM", g(("BM_StreamLoad", mib, True)), None, ps[1]),
    ]
    for what, ours, etcd, swarm in rows:
        r = []
        if etcd: r.append(f"{ours / etcd:.2f}x etcd")
        if swarm: r.append(f"{ours / swarm:.2f}x swarmkit")
        if what.startswith("save"): r.append(f"{ours / d:.2f}x dd")
        f = lambda v: f"{v:9.0f}" if v else f"{'':>9}"
        print(f"{mib:>4}Mi {what:<34} {ours:9.0f} {f(etcd)} {f(swarm)} {d:8.0f}  " + ", ".join(r))
print()
print("Peak RSS (MiB)")
for enc in ("plain", "aes"):
    for op in ("save", "load"):
        p = os.path.join(out, f"rss-{op}-{enc}.txt")
        rss, secs = open(p).read().split()[:2]
        print(f"  sealwal snap {op} --stream 1 GiB ({enc}): {int(rss) / 1024:7.1f}  ({secs} s)")
for (mib, enc), (_, _, rss) in sorted(peer.items()):
    print(f"  etcd bench-snap {mib} MiB ({enc}) save+load: {rss / 1024:7.1f}")
print()
t = []
l64 = g(("BM_SnapLoad", 64, True)); s64 = peer.get((64, "secretbox"), (0, 1, 0))[1]
t.append(f"encrypted 64 MiB load, inline .snap: {l64:.0f} MB/s (target >= 1000) = {l64 / s64:.1f}x swarmkit-style (target >= 5x)")
ls64 = g(("BM_StreamLoad", 64, True))
t.append(f"encrypted 64 MiB load, streamed: {ls64:.0f} MB/s (target >= 1000) = {ls64 / s64:.1f}x swarmkit-style (target >= 5x)")
for mib in sizes:
    t.append(f"streamed {mib} MiB save: plaintext {g(('BM_StreamSave', mib, False)) / dd[mib]:.2f}x dd, "
             f"encrypted {g(('BM_StreamSave', mib, True)) / dd[mib]:.2f}x dd (target >= 0.8x)")
print("Targets:\n  " + "\n  ".join(t))
PY
