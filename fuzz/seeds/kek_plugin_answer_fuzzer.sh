#!/usr/bin/env bash
# Seeds for kek_plugin_answer_fuzzer: byte 0 picks the op (0 wrap, 1 unwrap,
# 2 key-id), then a plugin's answer, well formed and near misses.
# Usage: kek_plugin_answer_fuzzer.sh CORPUS_DIR BUILD_DIR
set -euo pipefail
out="$1"
printf '\x00{"version":1,"wrapped":"AAECAwQFBgcICQoLDA0ODw==","key_id":"kms-1"}' >"$out/wrap"
printf '\x01{"version":1,"plaintext":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}' >"$out/unwrap"
printf '\x02{"version":1,"key_id":"arn:aws:kms:eu-west-1:1:key/abc"}' >"$out/key-id"
printf '\x01{"version":1,"error":"access denied"}' >"$out/error"
printf '\x00{"version":2,"wrapped":"AA=="}' >"$out/version"
printf '\x01{"version":1,"plaintext":"AA==","extra":true}' >"$out/unknown-field"
printf '\x00{"version":1,"wrapped":"not base64!"}' >"$out/bad-base64"
printf '\x02[1,2,3]' >"$out/array"
