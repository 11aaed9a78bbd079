#!/usr/bin/env bash
# Seeds for pem_key_file_fuzzer: files the fuzzer writes itself (locked
# under its fixed unlock key, unlocked, swarmkit layout, bare key), files
# `sealwal key` writes, and keys from `openssl genpkey`; each prefixed with
# the raw-mode byte 0x00.
# Usage: pem_key_file_fuzzer.sh CORPUS_DIR BUILD_DIR
set -euo pipefail
out="$1" build="$2"
SEALWAL_FUZZ_WRITE_SEEDS="$out" "$build/fuzz/pem_key_file_fuzzer" -runs=0 >/dev/null 2>&1 || true
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
add() { { printf '\0'; cat "$1"; } >"$out/$2"; }
if [ -x "$build/tools/sealwal" ]; then
  "$build/tools/sealwal" key init --key-file "$tmp/plain.key" >/dev/null 2>&1
  "$build/tools/sealwal" key rotate-dek --key-file "$tmp/plain.key" >/dev/null 2>&1
  add "$tmp/plain.key" cli-plain
  "$build/tools/sealwal" key init --key-file "$tmp/locked.key" --autolock \
    --algorithm chacha20-poly1305 >/dev/null 2>&1
  add "$tmp/locked.key" cli-locked
fi
if command -v openssl >/dev/null; then
  openssl genpkey -algorithm ED25519 -out "$tmp/ed.pem" 2>/dev/null && add "$tmp/ed.pem" genpkey-ed25519
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ec.pem" 2>/dev/null &&
    add "$tmp/ec.pem" genpkey-ec
  openssl ec -in "$tmp/ec.pem" -out "$tmp/ec-trad.pem" 2>/dev/null && add "$tmp/ec-trad.pem" ec-traditional
fi
