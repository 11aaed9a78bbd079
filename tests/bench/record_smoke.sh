#!/usr/bin/env bash
# The performance record's tools end to end on a tiny workload: the append
# matrix (1 KiB entries, batches 1 and 10, one round, every variant),
# bench_record.py, bench_tables.py and, where matplotlib is installed, the
# charts. Checks that every variant ran and that the record, the tables and
# the charts hold what docs/performance.md is built from.
#
#   record_smoke.sh SEALWAL PEER SOURCE_DIR WORK_DIR
set -euo pipefail
sealwal="$1" peer="$2" src="$3" work="$4"
rm -rf "$work" && mkdir -p "$work/raw"
python3 "$src/scripts/bench_append.py" "$sealwal" "$peer" "$work/tmp" "$work/raw/append.jsonl" 1 1024 1,10 \
  2>"$work/append.log"
python3 "$src/scripts/bench_record.py" "$work/raw" "$work/record.json" "record_smoke" >/dev/null
python3 - "$work/record.json" <<'PY'
import json, sys
rec = json.load(open(sys.argv[1]))
rows = rec["append"]
variants = {r["variant"] for r in rows}
assert len(variants) == 10, sorted(variants)
assert len(rows) == 20, len(rows)
for r in rows:
    assert r["entries_per_s"] > 0 and r["save_p50_us"] > 0, r
    assert r["entries"] == (500 if r["batch"] == 1 else 5000), r
m = rec["machine"]
assert m["cores"] >= 1 and m["kernel"] and len(m["git_commit"]) in (0, 40), m
names = [t["target"] for t in rec["targets"]]
assert any("1 KiB b10 " in n for n in names), names
PY
tables="$(python3 "$src/scripts/bench_tables.py" "$work/record.json")"
grep -q '^| 1 KiB | 10 |' <<<"$tables" || { echo "record_smoke: no append row in the tables" >&2; exit 1; }
grep -q '^| etcd |' <<<"$tables" || { echo "record_smoke: no latency row for etcd" >&2; exit 1; }
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  /usr/bin/python3 "$src/scripts/plot.py" "$work/record.json" "$work/charts" 2>/dev/null
  for png in append.png append-latency.png; do
    [ -s "$work/charts/$png" ] || { echo "record_smoke: $png not drawn" >&2; exit 1; }
  done
fi
rm -rf "$work"
echo "record_smoke: ok"
