#!/usr/bin/env bash
# The reliability campaign (docs/reliability.md): SIGKILLs `sealwal store
# gen` at random moments, then runs the same workload in process over the
# fault-injection file system with a crash, power loss, EIO or ENOSPC at
# every step, and crashes every step of the key commands and the rotator.
# Prints progress on stderr, the summary table on stdout, and exits
# non-zero on any loss.
#
#   scripts/crash-campaign.sh [--trials N] [--steps K] [--seed S] [--quick]
#                             [--parts LIST] [--workdir DIR]
#
# Binaries: $SEALWAL and $CRASH_CAMPAIGN when set (ctest sets them), else
# `sealwal` and `sealwal_crash_campaign` are built in $BUILD_DIR (default
# build/).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat <<'EOF'
usage: scripts/crash-campaign.sh [--trials N] [--steps K] [--seed S] [--quick]
                                 [--parts LIST] [--workdir DIR]
Runs the reliability campaign of docs/reliability.md and prints its summary
table; exits non-zero when any trial lost an acknowledged entry or failed a
check.
  --trials N    SIGKILL trials of `sealwal store gen` (default 500)
  --steps K     crash / fsync / ENOSPC steps per configuration (default 3000)
  --seed S      the campaign seed (default: from the clock, printed; --quick: 1)
  --quick       the short version CI runs: --trials 12 --steps 50 --seed 1
  --parts LIST  comma-separated subset of sigkill,power,eio,enospc,keyfile
  --workdir DIR where the SIGKILL trials make their stores (default: a temp dir)
Binaries: $SEALWAL and $CRASH_CAMPAIGN, else built in $BUILD_DIR (default build/).
EOF
}

trials=500
steps=3000
seed=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --quick) trials=12; steps=50; seed="${seed:-1}"; shift ;;
    --trials|--steps|--seed|--parts|--workdir)
      if [ $# -lt 2 ]; then echo "sealwal: crash-campaign: $1 needs a value (see --help)" >&2; exit 2; fi
      case "$1" in
        --trials) trials="$2" ;;
        --steps) steps="$2" ;;
        --seed) seed="$2" ;;
        *) args+=("$1" "$2") ;;
      esac
      shift 2 ;;
    *) echo "sealwal: crash-campaign: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
seed="${seed:-$(date +%s)}"

sealwal="${SEALWAL:-}"
campaign="${CRASH_CAMPAIGN:-}"
if [ -z "$sealwal" ] || [ -z "$campaign" ]; then
  build="${BUILD_DIR:-$root/build}"
  if [ ! -f "$build/build.ninja" ]; then
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
      ${SEALWAL_CMAKE_ARGS:-} >/dev/null
  fi
  echo "crash-campaign: building sealwal and sealwal_crash_campaign in $build" >&2
  cmake --build "$build" --target sealwal sealwal_crash_campaign >/dev/null
  sealwal="${sealwal:-$build/tools/sealwal}"
  campaign="${campaign:-$build/tests/sealwal_crash_campaign}"
fi
for b in "$sealwal" "$campaign"; do
  if [ ! -x "$b" ]; then echo "sealwal: crash-campaign: $b is not an executable" >&2; exit 2; fi
done

echo "crash-campaign: seed $seed (repeat with --seed $seed)" >&2
start=$(date +%s)
rc=0
"$campaign" --sealwal "$sealwal" --trials "$trials" --steps "$steps" --seed "$seed" \
  ${args[@]+"${args[@]}"} || rc=$?
echo "crash-campaign: $(( $(date +%s) - start )) s" >&2
exit "$rc"
