#!/usr/bin/env bash
# raftkv on sealwal against raftkv on etcd's own wal/snap packages: the same
# program (go/raftkv, --storage sealwal|etcd), three nodes on loopback, the
# same load (go/kvload: CLIENTS concurrent clients, PUT ?wait=1), in
# interleaved rounds, so that the machine's noise hits every variant alike.
#
#   scripts/bench_raftkv.sh [BUILD_DIR]
#   env: ROUNDS (3) CLIENTS (16) RUN_SECONDS (10) VALUE_SIZE (128)
#        OUT (where the JSON lines are appended; BUILD_DIR/bench-raftkv.jsonl)
#        VARIANTS ("etcd sealwal-plain sealwal-enc")
#
# Variants: etcd (plaintext, etcd's wal+snap), sealwal-plain, sealwal-enc
# (encrypted, key file locked), sealwal-enc-fallocate (segments reserved
# with fallocate, as etcd does, instead of zero-filled). Prints one JSON line per run (also appended
# to BUILD_DIR/bench-raftkv.jsonl), then the medians and the ratios
# against etcd. The goal: sealwal-enc >= 0.95x etcd's writes/s.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:-${BUILD_DIR:-$root/build}}" && pwd)"
rounds="${ROUNDS:-3}" clients="${CLIENTS:-16}" seconds="${RUN_SECONDS:-10}"
value_size="${VALUE_SIZE:-128}"
read -r -a variants <<< "${VARIANTS:-etcd sealwal-plain sealwal-enc}"

raftkv="$(BUILD_DIR="$build" bash "$root/scripts/raftkv.sh" build | tail -n 1)"
bash "$root/scripts/go.sh" "$build" build -o "$build/go-bin/kvload" sealwal.dev/go/kvload >&2
kvload="$build/go-bin/kvload"
work="$build/bench-raftkv-work"
out="${OUT:-$build/bench-raftkv.jsonl}"
export SEALWAL_UNLOCK_KEY="SEALWAL-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
cluster="http://127.0.0.1:13379,http://127.0.0.1:23379,http://127.0.0.1:33379"
endpoints="http://127.0.0.1:13380,http://127.0.0.1:23380,http://127.0.0.1:33380"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

node_cpu_ticks() {  # user + system clock ticks of the running nodes
  local t=0 p f
  for p in "${pids[@]}"; do
    read -r -a f < "/proc/$p/stat"
    t=$((t + f[13] + f[14]))
  done
  echo "$t"
}

run() {  # run VARIANT ROUND
  local variant="$1" round="$2" args=()
  case "$variant" in
    etcd) args=(--storage etcd) ;;
    sealwal-plain) args=(--plaintext) ;;
    sealwal-enc) args=() ;;
    sealwal-enc-fallocate) args=(--preallocation fallocate) ;;
    *) echo "bench_raftkv: unknown variant $variant" >&2; exit 2 ;;
  esac
  rm -rf "$work"; mkdir -p "$work"
  pids=()
  for i in 1 2 3; do
    "$raftkv" --id "$i" --cluster "$cluster" --port "${i}3380" --data-dir "$work/node$i" \
      "${args[@]}" 2>"$work/node$i.log" &
    pids+=($!)
  done
  # Ready once a write commits.
  local ok=0
  for _ in $(seq 1 100); do
    if curl -sf -X PUT -d x "http://127.0.0.1:13380/ready?wait=1" -o /dev/null; then ok=1; break; fi
    sleep 0.2
  done
  [ "$ok" = 1 ] || { echo "bench_raftkv: $variant: the cluster did not start" >&2; tail -5 "$work"/node*.log >&2; exit 1; }
  local line
  local cpu0 cpu1
  cpu0="$(node_cpu_ticks)"
  line="$("$kvload" --endpoints "$endpoints" --clients "$clients" --duration "${seconds}s" \
    --value-size "$value_size")"
  cpu1="$(node_cpu_ticks)"
  kill -TERM "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
  pids=()
  # CPU seconds the three nodes used during the load (user + system).
  local cpu
  cpu="$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", (b - a) / hz }')"
  line="{\"variant\":\"$variant\",\"round\":$round,\"nodes_cpu_s\":$cpu,${line#\{}"
  echo "$line" | tee -a "$out"
}

echo "bench_raftkv: $rounds rounds x ${#variants[@]} variants, $clients clients, ${seconds}s each" >&2
: > "$out.run"
for r in $(seq 1 "$rounds"); do
  for v in "${variants[@]}"; do
    echo "bench_raftkv: round $r $v" >&2
    run "$v" "$r" | tee -a "$out.run"
  done
done
rm -rf "$work"
python3 - "$out.run" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["variant"], []).append(r)
for r in rows:  # CPU the three nodes spent per committed write
    r["cpu_us_per_write"] = r["nodes_cpu_s"] * 1e6 / max(1, r["writes"])
med = {v: {k: statistics.median(x[k] for x in rs)
           for k in ("writes_per_s", "p50_ms", "p99_ms", "cpu_us_per_write")}
       for v, rs in by.items()}
for v in ("etcd", "sealwal-plain", "sealwal-enc", "sealwal-enc-fallocate"):
    if v in med:
        m = med[v]
        print(f"{v:14s} writes/s {m['writes_per_s']:8.0f}  p50 {m['p50_ms']:6.2f} ms  p99 {m['p99_ms']:6.2f} ms"
              f"  nodes' CPU {m['cpu_us_per_write']:5.0f} us/write")
def ratio(a, b):
    return f"{med[a]['writes_per_s'] / med[b]['writes_per_s']:.2f}" if a in med and b in med else "-"
print(f"ratio writes/s: sealwal-enc/etcd {ratio('sealwal-enc', 'etcd')}, "
      f"sealwal-plain/etcd {ratio('sealwal-plain', 'etcd')}, "
      f"sealwal-enc/sealwal-plain {ratio('sealwal-enc', 'sealwal-plain')}, "
      f"sealwal-enc-fallocate/etcd {ratio('sealwal-enc-fallocate', 'etcd')} (goal: enc/etcd >= 0.95)")
EOF
rm -f "$out.run"
