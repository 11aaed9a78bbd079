#!/usr/bin/env bash
# Installs what is missing, builds the CLI and runs `sealwal demo`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh" --target sealwal
build="${BUILD_DIR:-$root/build}"
exec "$build/tools/sealwal" demo
