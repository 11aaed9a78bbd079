#!/usr/bin/env bash
# Seeds for snap_file_fuzzer: etcd's fixture .snap files and small ones our
# CLI writes (inline and stream references, plaintext and encrypted under
# the fuzzer's key, 32 bytes of 0x07).
#   bash fuzz/seeds/snap_file_fuzzer.sh CORPUS_DIR BUILD_DIR
set -euo pipefail
out="$1" build="$2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fixtures="$root/../shared/fixtures/etcd-3.4.23"
mkdir -p "$out"
if [ -d "$fixtures" ]; then
  find "$fixtures" -name '*.snap' -size -64k | while read -r f; do
    cp "$f" "$out/etcd-$(basename "$(dirname "$(dirname "$f")")")-$(basename "$f")"
  done
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
printf '\007%.0s' $(seq 32) >"$tmp/dek"
cli="$build/tools/sealwal"
"$cli" snap save "$tmp/p" --index 5 --term 2 --size 300 --seed 1 --voters 1,2,3 >/dev/null
"$cli" snap save "$tmp/p" --index 6 --term 2 --size 9000 --seed 1 --stream --chunk-size 4096 >/dev/null
"$cli" snap save "$tmp/e" --index 5 --term 2 --size 300 --seed 1 --dek-file "$tmp/dek" >/dev/null
"$cli" snap save "$tmp/e" --index 6 --term 2 --size 9000 --seed 1 --stream --chunk-size 4096 \
  --dek-file "$tmp/dek" >/dev/null
for d in p e; do for f in "$tmp/$d"/*.snap; do cp "$f" "$out/ours-$d-$(basename "$f")"; done; done
