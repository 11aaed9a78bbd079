#!/usr/bin/env bash
# ctest: install the build tree into a scratch prefix, then build the
# consumer against it with find_package(sealwal) twice (C++20, and a project
# configured for C++17, which sealwal's targets raise to C++20) and run both.
# Also checks that only include/sealwal/ is installed and that internal
# headers are not.
set -euo pipefail
build="$1"; src="$2"; work="$3"
rm -rf "$work"; mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
top=$(ls "$work/prefix/include")
if [ "$top" != sealwal ]; then echo "include/ holds more than sealwal/: $top" >&2; exit 1; fi
for internal in wal/decoder.h wal/record_writer.h wal/segment_pipeline.h wal/metadata_check.h \
    base/status_macros.h base/endian.h pem/pem_block.h; do
  if [ -e "$work/prefix/include/sealwal/$internal" ]; then echo "internal header installed: $internal" >&2; exit 1; fi
done
for doc in README.md format.md security.md; do
  if [ ! -f "$work/prefix/share/doc/sealwal/$doc" ]; then echo "share/doc/sealwal/$doc not installed" >&2; exit 1; fi
done
# Every installed header stands alone on the installed tree (so none of them
# includes an internal header).
cxx="${CXX:-c++}"
while IFS= read -r h; do
  rel="${h#"$work/prefix/include/"}"
  echo "#include \"$rel\"" | "$cxx" -std=c++20 -fsyntax-only -I"$work/prefix/include" -x c++ - \
    || { echo "installed header $rel does not compile on its own" >&2; exit 1; }
done < <(find "$work/prefix/include" -name '*.h')
for std in 20 17; do
  mkdir -p "$work/data$std"
  cmake -S "$src" -B "$work/build$std" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
    -DCMAKE_CXX_STANDARD=$std >/dev/null
  cmake --build "$work/build$std" >/dev/null
  "$work/build$std/app" "$work/data$std"
done
