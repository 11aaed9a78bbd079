#!/usr/bin/env bash
# Draws the charts of a performance record written by scripts/bench.sh.
#
#   scripts/plot.sh RESULTS.json [OUTDIR]      (default OUTDIR: docs/performance)
#
# Installs python3-matplotlib from Debian when it is missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-}" in
  -h|--help|"") echo "usage: $0 RESULTS.json [OUTDIR]   (charts as PNG; default OUTDIR docs/performance)"
                [ -n "${1:-}" ]; exit ;;
esac
[ -f "$1" ] || { echo "plot: $1: no such file" >&2; exit 1; }
# Debian's python3 is the one its python3-matplotlib serves.
py=/usr/bin/python3; [ -x "$py" ] || py=python3
"$py" -c 'import matplotlib' 2>/dev/null || "$root/scripts/setup.sh" python3-matplotlib >&2
"$py" "$root/scripts/plot.py" "$1" "${2:-$root/docs/performance}"
