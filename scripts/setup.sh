#!/usr/bin/env bash
# Installs exactly the Debian packages sealwal needs that are missing.
# Idempotent; silent when nothing is missing; runs apt-get update only when
# it must install something. Works as root (CI) or through sudo.
#
#   scripts/setup.sh              the C++ build's packages
#   scripts/setup.sh PACKAGE...   these instead (scripts/go.sh: Go's)
set -euo pipefail

pkgs=(
  g++ cmake ninja-build pkg-config git
  libssl-dev openssl
  libp11-kit-dev softhsm2
  libprotobuf-dev protobuf-compiler
  libxxhash-dev libabsl-dev libcli11-dev libisal-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
)
(($#)) && pkgs=("$@")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
