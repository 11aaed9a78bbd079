#!/usr/bin/env bash
# Runs the Go tool on go/ (the cgo binding, raftkv, the etcd interop driver)
# offline, in GOPATH mode, against Debian's Go packages.
#
#   scripts/go.sh BUILD_DIR <go arguments...>
#   e.g. scripts/go.sh build build -o "$PWD/build/go-bin/raftkv" sealwal.dev/go/raftkv
# (it runs from go/ through the symlink: give output paths absolute)
#
# go/ is seen as the import path sealwal.dev/go through a symlink in
# BUILD_DIR/gopath (GOPATH=BUILD_DIR/gopath:/usr/share/gocode, where Debian's
# golang-*-dev packages keep their sources). cgo finds the C API's header in
# include/ and libsealwal.so in BUILD_DIR/sealwal/c (rpath set), so BUILD_DIR
# must hold a build of the `sealwal_c_shared` target for the binding.
# Installs the Debian packages it needs when missing (through setup.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -lt 2 ]; then
  echo "usage: scripts/go.sh BUILD_DIR <go arguments...>" >&2
  exit 2
fi
mkdir -p "$1"
build="$(cd "$1" && pwd)"
shift

bash "$root/scripts/setup.sh" golang-go golang-etcd-server-dev golang-golang-x-crypto-dev \
  golang-google-protobuf-dev golang-github-prometheus-client-golang-dev \
  golang-github-prometheus-client-model-dev

gopath="$build/gopath"
mkdir -p "$gopath/src/sealwal.dev"
ln -sfn "$root/go" "$gopath/src/sealwal.dev/go"
libdir="$build/sealwal/c"
export GOPATH="$gopath:/usr/share/gocode" GO111MODULE=off GOPROXY=off GOFLAGS= \
       GOCACHE="${GOCACHE:-$build/gocache}" \
       CGO_CFLAGS="-I$root/include ${CGO_CFLAGS:-}" \
       CGO_LDFLAGS="-L$libdir -Wl,-rpath,$libdir ${CGO_LDFLAGS:-}"
cd "$gopath/src/sealwal.dev/go"
exec go "$@"
