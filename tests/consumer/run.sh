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
# The C API through pkg-config, as a C program outside CMake links it:
# against libsealwal.so, and statically (pkg-config --static names the
# component libraries and the system ones).
cc="${CC:-cc}"
pc="$(find "$work/prefix" -name sealwal.pc -printf '%h')"
export PKG_CONFIG_PATH="$pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
libdir="$(pkg-config --variable=libdir sealwal)"
c_test="$src/../c_api_test.c"
"$cc" -std=c99 -D_POSIX_C_SOURCE=200809L -o "$work/c_shared" "$c_test" \
  $(pkg-config --cflags --libs sealwal) -Wl,-rpath,"$libdir"
# The program needs libsealwal.so alone, and the library exports only the C API.
if readelf -d "$work/c_shared" | grep NEEDED | grep -qv 'libsealwal\.so\|libc\.so'; then
  echo "a libsealwal.so user needs more than libsealwal.so:" >&2
  readelf -d "$work/c_shared" | grep NEEDED >&2; exit 1
fi
if nm -D --defined-only "$libdir/libsealwal.so" | awk '{print $3}' | grep -v '^sealwal_' | grep -q .; then
  echo "libsealwal.so exports more than sealwal_*" >&2; exit 1
fi
"$work/c_shared" "$work/c-shared-data"
"$cc" -std=c99 -D_POSIX_C_SOURCE=200809L -o "$work/c_static" "$c_test" $(pkg-config --cflags sealwal) \
  "$libdir/libsealwal.a" $(pkg-config --static --libs sealwal | sed 's/-lsealwal / /')
"$work/c_static" "$work/c-static-data"
