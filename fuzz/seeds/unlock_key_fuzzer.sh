#!/usr/bin/env bash
# Seeds for unlock_key_fuzzer: valid keys and near misses.
# Usage: unlock_key_fuzzer.sh CORPUS_DIR BUILD_DIR
set -euo pipefail
out="$1"
printf 'SEALWAL-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8' >"$out/valid"
printf 'SEALWAL-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n' >"$out/valid-newline"
printf 'SEALWAL-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHhf' >"$out/noncanonical"
printf 'SEALWAL-2-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8' >"$out/version"
printf 'SWMKEY-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8' >"$out/swarm"
printf 'SEALWAL-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=' >"$out/padded"
