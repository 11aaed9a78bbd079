#!/usr/bin/env bash
# Seeds for encrypted_record_fuzzer: records sealed by the fuzzer's own keys.
# Usage: encrypted_record_fuzzer.sh CORPUS_DIR BUILD_DIR
set -euo pipefail
SEALWAL_FUZZ_WRITE_SEEDS="$1" "$2/fuzz/encrypted_record_fuzzer" -runs=0 >/dev/null 2>&1
