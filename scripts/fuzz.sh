#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs them.
#
#   scripts/fuzz.sh --list            one target name per line
#   scripts/fuzz.sh [TARGET] [SECONDS]  run TARGET (default: every target)
#                                     for SECONDS each (default 20)
#
# Seed corpora come from etcd's fixtures and from files our own writers
# produce; what the fuzzer adds is kept in $BUILD_DIR/corpus/TARGET between
# runs, and fuzz/regressions/TARGET/ is copied in at every run. No target to
# run (a missing or empty list) is a failure, not a quiet success. A crash stops the run with a non-zero status and leaves the input as
# $BUILD_DIR/crashes/TARGET/crash-*: add it under fuzz/regressions/TARGET/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build-fuzz}"

"$root/scripts/setup.sh"
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSEALWAL_BUILD_FUZZ=ON -DSEALWAL_BUILD_TESTS="${FUZZ_WITH_TESTS:-OFF}" -DSEALWAL_BUILD_BENCH=OFF \
  ${FUZZ_CMAKE_ARGS:-} >/dev/null
list="$build/fuzz/fuzzers.txt"
if [ ! -s "$list" ]; then
  echo "fuzz: no target list ($list missing or empty): nothing would run" >&2
  exit 1
fi
mapfile -t all < <(grep -v '^$' "$list")
if [ "${#all[@]}" -eq 0 ]; then echo "fuzz: $list names no target" >&2; exit 1; fi
if [ "${1:-}" = "--list" ]; then printf '%s\n' "${all[@]}"; exit 0; fi
targets=("${all[@]}")
if [ $# -ge 1 ] && [ -n "$1" ] && [ "$1" != all ]; then
  printf '%s\n' "${all[@]}" | grep -qxF "$1" || { echo "fuzz: unknown target $1 (--list names them)" >&2; exit 1; }
  targets=("$1")
fi
seconds="${2:-20}"
if ! cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" sealwal >"$build/build.log" 2>&1; then
  grep -E "error|FAILED" "$build/build.log" | head -20 >&2
  echo "fuzz: build failed (see $build/build.log)" >&2
  exit 1
fi

# etcd's fixtures seed the decoders: the tests' build generates them into
# BUILD_DIR/fixtures; otherwise the peer (built here if need be) does.
fixtures="$build/fixtures/etcd-3.4.23"
if [ ! -f "$fixtures/manifest.json" ]; then
  peer="${SEALWAL_PEER_BIN:-}"
  [ -n "$peer" ] || peer="$("$root/scripts/build_peer.sh" "$build" 2>"$build/peer.log" | tail -n 1)" || peer=""
  rm -rf "$fixtures.tmp"
  if [ -x "$peer" ] && "$peer" gen-fixtures --out "$fixtures.tmp" >/dev/null; then
    rm -rf "$fixtures" && mv "$fixtures.tmp" "$fixtures"
  else
    echo "fuzz: no etcd fixtures (etcdwal-peer missing, see $build/peer.log); seeding without them" >&2
  fi
fi
seed_corpus() {  # seed_corpus TARGET DIR: files a decoder should start from
  local t="$1" d="$2" tmp
  case "$t" in
    wal_frame_fuzzer|wal_read_all_fuzzer)
      if [ -d "$fixtures" ]; then
        find "$fixtures" -name '*.wal' -size -600k -exec cp {} "$d/" \; 2>/dev/null || true
      fi
      tmp="$(mktemp -d)"
      "$build/tools/sealwal" wal gen "$tmp/wal" --entries 20 --size 40 --batch 3 --seed 1 \
        --segment-size 4096 >/dev/null
      for f in "$tmp"/wal/*.wal; do head -c 8192 "$f" >"$d/gen-$(basename "$f")"; done
      rm -rf "$tmp"
      ;;
    *)
      # Other components describe their seeds in fuzz/seeds/TARGET.sh DIR BUILD.
      if [ -f "$root/fuzz/seeds/$t.sh" ]; then bash "$root/fuzz/seeds/$t.sh" "$d" "$build"; fi
      ;;
  esac
}

status=0
ran=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  crashes="$build/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  [ -n "$(ls -A "$corpus")" ] || seed_corpus "$t" "$corpus"
  # Every run starts from the inputs that once crashed, even on a corpus
  # kept from an earlier run.
  if [ -d "$root/fuzz/regressions/$t" ]; then cp "$root/fuzz/regressions/$t"/* "$corpus/"; fi
  echo "fuzz: $t for ${seconds}s" >&2
  ran=$((ran + 1))
  # Decoders start from large real files; the model fuzzer wants long
  # operation sequences from the start.
  len_opts=(-max_len=65536)
  [ "$t" = wal_model_fuzzer ] && len_opts=(-max_len=2048 -len_control=0)
  if ! "$build/fuzz/$t" -max_total_time="$seconds" "${len_opts[@]}" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$crashes/" -print_final_stats=1 "$corpus" >"$build/$t.log" 2>&1; then
    echo "fuzz: $t FAILED (see $build/$t.log; inputs in $crashes)" >&2
    tail -40 "$build/$t.log" >&2
    status=1
  else
    grep -E '^#[0-9]+.*DONE|stat::number_of_executed_units|cov:' "$build/$t.log" | tail -2 >&2
  fi
done
if [ "$ran" -ne "${#targets[@]}" ]; then echo "fuzz: ran $ran of ${#targets[@]} targets" >&2; exit 1; fi
exit "$status"
