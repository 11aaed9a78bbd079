#!/usr/bin/env bash
# The one command: installs what is missing, builds the CLI and runs
# `sealwal demo` (an encrypted store, a simulated Raft node with snapshots
# and a DEK rotation, a SIGKILLed writer recovered and verified, a summary).
# Then, on the store the demo kept, what an operator sees with the CLI:
# inspect, verify, an operator-requested rotation, a backup and a restore.
# Idempotent: each run works in a new temp dir, removed at the end
# (KEEP=1 keeps it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh" --target sealwal >/dev/null
build="${BUILD_DIR:-$root/build}"
sealwal="$build/tools/sealwal"

work="$(mktemp -d "${TMPDIR:-/tmp}/sealwal-demo-sh-XXXXXX")"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

TMPDIR="$work" "$sealwal" demo --keep
dir="$(ls -d "$work"/sealwal-demo-*)"
store="$dir/node"
run() { echo "\$ sealwal $*"; "$sealwal" "$@"; }
# As run, showing only the output lines matching $1.
run_lines() { local pat="$1"; shift; echo "\$ sealwal $*"; "$sealwal" "$@" | grep -E "$pat"; }

echo
echo "== The operator's view of the store the demo kept (unlock key from a file, never argv)"
export SEALWAL_UNLOCK_KEY
SEALWAL_UNLOCK_KEY="$(cat "$dir/unlock-key")"
run store inspect "$store"
run store verify "$store" --expect-seed 7
run key inspect --key-file "$store/node.key"
echo "\$ sealwal wal dump $store/wal-v3-encrypted   # without the key: entry data stays sealed"
"$sealwal" wal dump "$store/wal-v3-encrypted" >/dev/null 2>"$work/err" || echo "exit $?: $(cat "$work/err")"

echo
echo "== An operator-requested rotation: \`store rotate\`, carried out by the next writer"
run store rotate "$store"
echo "\$ sealwal store gen $store --entries 3000 --size 1024 --batch 100 --seed 7 | grep -v synced"
"$sealwal" store gen "$store" --entries 3000 --size 1024 --batch 100 --seed 7 | grep -v '^synced' || true
run store inspect "$store"

echo
echo "== A backup that carries its keys (wrapped), a redacted one, and a restore"
run_lines '^(snapshot|wal-end|bytes|key-material) ' store backup "$store" --out "$work/node.swb"
run_lines '^(redacted|key-material) ' store backup "$store" --out "$work/redacted.swb" --redact
run_lines '^(snapshot|entries|raft-dek-needs-rotation) ' store restore "$work/node.swb" --to "$work/restored"
echo "\$ diff <(sealwal store verify $store) <(sealwal store verify $work/restored)   # same digest"
diff <("$sealwal" store verify "$store" | grep -E '^(entries|snapshot|digest) ') \
     <("$sealwal" store verify "$work/restored" | grep -E '^(entries|snapshot|digest) ') && echo "identical"
echo "\$ sealwal store restore $work/redacted.swb --to $work/r2"
"$sealwal" store restore "$work/redacted.swb" --to "$work/r2" >/dev/null 2>"$work/err" || echo "exit $?: $(cat "$work/err")"

echo
if [ "${KEEP:-0}" = 1 ]; then echo "files kept in $dir"; else echo "removed $work (KEEP=1 keeps it)"; fi
