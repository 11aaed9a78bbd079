#!/usr/bin/env bash
# Seeds for snap_stream_fuzzer: small streams (4 KiB chunks; empty, one
# chunk, several, a partial last chunk), plaintext and encrypted under the
# fuzzer's key (32 bytes of 0x07).
#   bash fuzz/seeds/snap_stream_fuzzer.sh CORPUS_DIR BUILD_DIR
set -euo pipefail
out="$1" build="$2"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
printf '\007%.0s' $(seq 32) >"$tmp/dek"
cli="$build/tools/sealwal"
i=0
for size in 0 1 4096 5000 12288 20000; do
  i=$((i + 1))
  "$cli" snap save "$tmp/p$i" --index "$i" --term 1 --size "$size" --seed 3 --stream \
    --chunk-size 4096 >/dev/null
  "$cli" snap save "$tmp/e$i" --index "$i" --term 1 --size "$size" --seed 3 --stream \
    --chunk-size 4096 --dek-file "$tmp/dek" >/dev/null
  cp "$tmp/p$i"/*.snap.stream "$out/plain-$size.stream"
  cp "$tmp/e$i"/*.snap.stream "$out/aes-$size.stream"
done
