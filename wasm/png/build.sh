#!/bin/sh
# Builds build/png_rows.wasm: zlib 1.2.13's inflate (Debian bookworm's source package, the zlib
# Pillow 9.4 links on Debian 12, with Debian's patches) + c/png_rows.c + c/libc.c, with
# clang-14 and wasm-ld-14. Needs the Debian packages clang-14 and lld-14, and apt's source lists
# (deb-src) for `apt-get source`: the only thing fetched is Debian's source package, checked
# against the SHA-256 sums below. The built module is committed (png_rows.wasm beside this
# script, like squoosh's codecs), so only changing the inflater needs this build;
# `sh build.sh --check` rebuilds into build/ and compares. Idempotent: does nothing when the
# output is up to date.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/build"
WASM="$OUT/png_rows.wasm"
COMMITTED="$HERE/png_rows.wasm"
CHECK=${1:-}
VERSION=1.2.13
DEBVER=1:1.2.13.dfsg-1
ORIG="zlib_${VERSION}.dfsg.orig.tar.bz2"
ORIG_SHA256=71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1
DEBIAN="zlib_1.2.13.dfsg-1.debian.tar.xz"
DEBIAN_SHA256=f66cf3d4f2d7defcd4d1fd1fb0a11ee39f1e01b42ec7d059c9dc5c1695133c44

CC=${CC:-clang-14}
LD=${WASM_LD:-wasm-ld-14}

# Up to date: the output is newer than this script and our C.
if [ "$CHECK" != "--check" ] && [ -f "$WASM" ] && [ -z "$(find "$HERE/build.sh" "$HERE/c" -newer "$WASM" -print -quit)" ]; then
  exit 0
fi

for tool in "$CC" "$LD"; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "wasm/png/build.sh: $tool not found (apt-get install -y --no-install-recommends clang-14 lld-14)" >&2
    exit 1
  }
done

mkdir -p "$OUT/dl" "$OUT/obj"
SRC="$OUT/zlib-$VERSION"

check() { # file sha256
  [ -f "$OUT/dl/$1" ] && echo "$2  $OUT/dl/$1" | sha256sum -c --status
}

if ! check "$ORIG" "$ORIG_SHA256" || ! check "$DEBIAN" "$DEBIAN_SHA256"; then
  # The version from bookworm's main pool: the +deb12u1 security update changes only minizip.
  (cd "$OUT/dl" && apt-get source --download-only "zlib=$DEBVER" >/dev/null 2>&1) || {
    echo "wasm/png/build.sh: apt-get source zlib=$DEBVER failed. Enable source lists from the" >&2
    echo "  binary ones and update, e.g.:" >&2
    echo "  sed 's/^Types: deb\$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > /etc/apt/sources.list.d/debian-src.sources && apt-get update" >&2
    exit 1
  }
  check "$ORIG" "$ORIG_SHA256" || { echo "wasm/png/build.sh: $ORIG: wrong SHA-256" >&2; exit 1; }
  check "$DEBIAN" "$DEBIAN_SHA256" || { echo "wasm/png/build.sh: $DEBIAN: wrong SHA-256" >&2; exit 1; }
fi

# Fresh, patched source tree.
rm -rf "$SRC" "$SRC.tmp"
mkdir -p "$SRC.tmp"
tar -xjf "$OUT/dl/$ORIG" -C "$SRC.tmp" --strip-components=1
tar -xJf "$OUT/dl/$DEBIAN" -C "$SRC.tmp"
for p in $(cat "$SRC.tmp/debian/patches/series"); do
  patch -s -p1 -d "$SRC.tmp" <"$SRC.tmp/debian/patches/$p"
done
mv "$SRC.tmp" "$SRC"

# inflate only, zlib format only (NO_GZIP). zutil.c is not built: it pulls in the gz* headers,
# and its two default allocators are in c/png_rows.c.
CFLAGS="--target=wasm32 -O2 -nostdlib -ffreestanding -mbulk-memory -msimd128 -mnontrapping-fptoint -msign-ext
  -DNDEBUG -DNO_GZIP -isystem $HERE/c/include -I $SRC -Wall"

rm -f "$OUT"/obj/*.o
for f in inflate inftrees inffast adler32; do
  $CC $CFLAGS -c "$SRC/$f.c" -o "$OUT/obj/$f.o"
done
$CC $CFLAGS -c "$HERE/c/png_rows.c" -o "$OUT/obj/png_rows.o"
$CC $CFLAGS -fno-builtin -c "$HERE/c/libc.c" -o "$OUT/obj/libc.o"

# 256 KiB to start (buffers and zlib's arena are static); grows only for the rows of wide images.
$LD --no-entry --strip-all --gc-sections -O2 --lto-O2 \
  -z stack-size=16384 --initial-memory=262144 --max-memory=2147483648 \
  --export=pr_input --export=pr_input_cap --export=pr_begin --export=pr_feed --export=pr_pass \
  --export=pr_row --export=pr_last --export=pr_current --export=pr_finish --export=pr_message \
  "$OUT"/obj/*.o -o "$WASM.tmp"
mv "$WASM.tmp" "$WASM"
echo "wasm/png/build.sh: $(wc -c <"$WASM") bytes -> ${WASM#$PWD/}"
if [ "$CHECK" = "--check" ]; then
  cmp -s "$WASM" "$COMMITTED" || { echo "wasm/png/build.sh: the build differs from the committed png_rows.wasm" >&2; exit 1; }
  echo "wasm/png/build.sh: identical to the committed png_rows.wasm"
else
  cp "$WASM" "$COMMITTED"
fi
