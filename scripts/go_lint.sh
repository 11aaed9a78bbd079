#!/usr/bin/env bash
# gofmt and go vet over every Go package in go/ (ctest: Go.Vet).
#   scripts/go_lint.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:?usage: scripts/go_lint.sh BUILD_DIR}"
unformatted="$(gofmt -l "$root/go")"
if [ -n "$unformatted" ]; then
  echo "go_lint: not gofmt-formatted: $unformatted" >&2
  exit 1
fi
pkgs=()
for d in "$root"/go/*/; do
  ls "$d"*.go >/dev/null 2>&1 && pkgs+=("sealwal.dev/go/$(basename "$d")")
done
exec bash "$root/scripts/go.sh" "$build" vet "${pkgs[@]}"
