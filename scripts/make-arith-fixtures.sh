#!/usr/bin/env bash
# Arithmetic-coded JPEG fixtures (test/fixtures/jpeg/arith/), made from Huffman-coded fixtures by
# jpegtran, which rewrites the entropy coding without touching the DCT coefficients: each file
# must decode to exactly its source's pixels (whose Pillow goldens are in golden.json) at every
# scale. Needs libjpeg-turbo's tools (Debian: apt-get install libjpeg-turbo-progs).
set -euo pipefail
cd "$(dirname "$0")/../test/fixtures/jpeg"
out=arith
mkdir -p "$out"
make() { # <source> <name> <jpegtran options...>
  local src=$1 name=$2
  shift 2
  jpegtran -copy none "$@" "$src" > "$out/$name"
  printf '  {"file": "%s", "source": "%s", "jpegtran": "%s"},\n' "$name" "$src" "$*"
}
{
  echo '['
  make cat-420.jpg cat-420-arith.jpg -arithmetic
  make cat-444.jpg cat-444-arith-rst.jpg -arithmetic -restart 3B
  make cat-gray.jpg cat-gray-arith-prog.jpg -arithmetic -progressive
  make cat-422-prog.jpg cat-422-arith-prog-rst.jpg -arithmetic -progressive -restart 5B
  make coffee-97x61-420.jpg coffee-97x61-420-arith-prog.jpg -arithmetic -progressive
  make astro-17x33-420.jpg astro-17x33-420-arith-rst.jpg -arithmetic -restart 1
  make cat-noninterleaved.jpg cat-noninterleaved-arith.jpg -arithmetic
  make big-4032x3024-prog.jpg big-4032x3024-arith-prog.jpg -arithmetic -progressive
} | sed '$ s/,$//' > "$out/sources.json.tmp"
echo ']' >> "$out/sources.json.tmp"
mv "$out/sources.json.tmp" "$out/sources.json"

# Damaged files: bytes overwritten inside the entropy-coded data. Their expected pixels are
# libjpeg-turbo's own decode (djpeg, the library Pillow uses; with its defaults, as Pillow's):
# what it makes of damage is the reference too.
damage() { # <source> <name> <fraction of the file> <byte>
  local src=$1 name=$2 frac=$3 byte=$4
  cp "$out/$src" "$out/$name"
  local size at
  size=$(stat -c %s "$out/$name")
  at=$(python3 -c "print(int($size * $frac))")
  printf "\\x$byte" | dd of="$out/$name" bs=1 seek="$at" conv=notrunc status=none
  local sha
  # djpeg exits 2 after warning about damaged data; its output is still the decode.
  sha=$({ djpeg -ppm "$out/$name" 2>/dev/null || true; } | python3 -c '
import hashlib, sys
data = sys.stdin.buffer.read()
if not data.startswith(b"P6"):
    print("refused"); sys.exit()
# P6 header: magic, width, height, maxval, each followed by one whitespace byte.
fields, i = [], 0
while len(fields) < 4:
    while data[i:i+1].isspace(): i += 1
    j = i
    while j < len(data) and not data[j:j+1].isspace(): j += 1
    fields.append(data[i:j]); i = j
print(hashlib.sha256(data[i+1:]).hexdigest())')
  printf '  {"file": "%s", "damaged": "%s", "at": %s, "byte": "%s", "djpegSha256": "%s"},\n' "$name" "$src" "$at" "$byte" "$sha"
}
{
  echo '['
  damage cat-420-arith.jpg cat-420-arith-damaged-a.jpg 0.4 00
  damage cat-420-arith.jpg cat-420-arith-damaged-b.jpg 0.7 ff
  damage cat-444-arith-rst.jpg cat-444-arith-rst-damaged.jpg 0.5 5a
  damage cat-422-arith-prog-rst.jpg cat-422-arith-prog-rst-damaged.jpg 0.5 a5
  damage cat-gray-arith-prog.jpg cat-gray-arith-prog-damaged.jpg 0.6 ff
} | sed '$ s/,$//' > "$out/damaged.json.tmp"
echo ']' >> "$out/damaged.json.tmp"
mv "$out/damaged.json.tmp" "$out/damaged.json"
