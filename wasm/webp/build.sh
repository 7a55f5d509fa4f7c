#!/bin/sh
# Builds build/webp_dec.wasm: libwebp 1.2.4's decoder (Debian bookworm's source package,
# with Debian's patches and ours) + c/webp_rows.c + c/libc.c, with clang-14 and wasm-ld-14.
# Needs the Debian packages clang-14 and lld-14, and apt's source lists (deb-src) for
# `apt-get source`: the only thing fetched is Debian's source package, checked against the
# SHA-256 sums below. The built module is committed (webp_dec.wasm beside this script, like
# squoosh's codecs), so only changing the decoder needs this build; `sh build.sh --check`
# rebuilds into build/ and compares. Idempotent: does nothing when the output is up to date.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/build"
WASM="$OUT/webp_dec.wasm"
COMMITTED="$HERE/webp_dec.wasm"
CHECK=${1:-}
VERSION=1.2.4
DEBVER=1.2.4-0.2+deb12u1
ORIG="libwebp_${VERSION}.orig.tar.gz"
ORIG_SHA256=7bf5a8a28cc69bcfa8cb214f2c3095703c6b73ac5fba4d5480c205331d9494df
DEBIAN="libwebp_${DEBVER}.debian.tar.xz"
DEBIAN_SHA256=69cdba4dfe2e1b34d55fa80c1b29c31cacd40dd183812d6bcca7e508a2f7afcd

CC=${CC:-clang-14}
LD=${WASM_LD:-wasm-ld-14}

# Up to date: the output is newer than this script, our C, headers and patches.
if [ "$CHECK" != "--check" ] && [ -f "$WASM" ] && [ -z "$(find "$HERE/build.sh" "$HERE/c" "$HERE/patches" -newer "$WASM" -print -quit)" ]; then
  exit 0
fi

for tool in "$CC" "$LD"; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "wasm/webp/build.sh: $tool not found (apt-get install -y --no-install-recommends clang-14 lld-14)" >&2
    exit 1
  }
done

mkdir -p "$OUT/dl" "$OUT/obj"
SRC="$OUT/libwebp-$VERSION"

check() { # file sha256
  [ -f "$OUT/dl/$1" ] && echo "$2  $OUT/dl/$1" | sha256sum -c --status
}

if ! check "$ORIG" "$ORIG_SHA256" || ! check "$DEBIAN" "$DEBIAN_SHA256"; then
  (cd "$OUT/dl" && apt-get source --download-only "libwebp=$DEBVER" >/dev/null 2>&1) || {
    echo "wasm/webp/build.sh: apt-get source libwebp=$DEBVER failed. Enable source lists from the" >&2
    echo "  binary ones and update, e.g.:" >&2
    echo "  sed 's/^Types: deb\$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > /etc/apt/sources.list.d/debian-src.sources && apt-get update" >&2
    exit 1
  }
  check "$ORIG" "$ORIG_SHA256" || { echo "wasm/webp/build.sh: $ORIG: wrong SHA-256" >&2; exit 1; }
  check "$DEBIAN" "$DEBIAN_SHA256" || { echo "wasm/webp/build.sh: $DEBIAN: wrong SHA-256" >&2; exit 1; }
fi

# Fresh, patched source tree (cheap: only a few seconds of tar).
rm -rf "$SRC" "$SRC.tmp"
mkdir -p "$SRC.tmp"
tar -xzf "$OUT/dl/$ORIG" -C "$SRC.tmp" --strip-components=1
tar -xJf "$OUT/dl/$DEBIAN" -C "$SRC.tmp"
for p in $(cat "$SRC.tmp/debian/patches/series"); do
  patch -s -p1 -d "$SRC.tmp" <"$SRC.tmp/debian/patches/$p"
done
for p in "$HERE"/patches/*.patch; do
  patch -s -p1 -d "$SRC.tmp" <"$p"
done
mv "$SRC.tmp" "$SRC"

LIBWEBP="
src/dec/alpha_dec.c src/dec/buffer_dec.c src/dec/frame_dec.c src/dec/io_dec.c
src/dec/quant_dec.c src/dec/tree_dec.c src/dec/vp8_dec.c src/dec/vp8l_dec.c src/dec/webp_dec.c
src/dsp/alpha_processing.c src/dsp/cpu.c src/dsp/dec.c src/dsp/dec_clip_tables.c
src/dsp/filters.c src/dsp/lossless.c src/dsp/rescaler.c src/dsp/upsampling.c src/dsp/yuv.c
src/utils/bit_reader_utils.c src/utils/color_cache_utils.c src/utils/filters_utils.c
src/utils/huffman_utils.c src/utils/quant_levels_dec_utils.c src/utils/random_utils.c
src/utils/rescaler_utils.c src/utils/thread_utils.c src/utils/utils.c"

CFLAGS="--target=wasm32 -O2 -nostdlib -ffreestanding -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc
  -mbulk-memory -msimd128 -mnontrapping-fptoint -msign-ext
  -DNDEBUG -DWEBP_DISABLE_STATS
  -isystem $HERE/c/include -I $SRC -Wall -Wno-unused-function"

# Compile in parallel (two jobs: the machine's cores are shared).
rm -f "$OUT"/obj/*.o
{
  for f in $LIBWEBP; do echo "$SRC/$f"; done
  echo "$HERE/c/webp_rows.c"
} | xargs -P 2 -I{} sh -c 'o="$1/obj/$(echo "$2" | sed "s|.*/\(src/\)\{0,1\}||; s|/|_|g; s|\.c$|.o|")"; exec $3 $4 -c "$2" -o "$o"' _ "$OUT" {} "$CC" "$CFLAGS"
$CC $CFLAGS -fno-builtin -c "$HERE/c/libc.c" -o "$OUT/obj/libc.o"

$LD --no-entry --strip-all --gc-sections -O2 --lto-O2 \
  -z stack-size=262144 --initial-memory=1048576 --max-memory=2147483648 \
  --export=webp_decode_rows --export=webp_info --export=webp_malloc --export=webp_free \
  --export=webp_heap_in_use --export=webp_heap_peak --export=webp_heap_reset_peak --export=webp_heap_limit \
  "$OUT"/obj/*.o -o "$WASM.tmp"
mv "$WASM.tmp" "$WASM"
echo "wasm/webp/build.sh: $(wc -c <"$WASM") bytes -> ${WASM#$PWD/}"
if [ "$CHECK" = "--check" ]; then
  cmp -s "$WASM" "$COMMITTED" || { echo "wasm/webp/build.sh: the build differs from the committed webp_dec.wasm" >&2; exit 1; }
  echo "wasm/webp/build.sh: identical to the committed webp_dec.wasm"
else
  cp "$WASM" "$COMMITTED"
fi
