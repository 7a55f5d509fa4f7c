#!/usr/bin/env python3
"""Makes the PNG fixtures of test/node/png-stream.test.ts in test/fixtures/png/.

Every colour type and bit depth (gray 1/2/4/8/16, gray+alpha 8/16, RGB 8/16, RGBA 8/16,
palette 1/2/4/8), all five scanline filters (each image cycles through them row by row, and
some use one filter throughout), Adam7 or not, odd sizes (1x1, 1xN, Nx1, sizes whose Adam7
passes are empty), tRNS chunks, palettes shorter than the indices used, several IDAT
layouts and zlib encodings (stored, fixed and dynamic Huffman blocks), crops of the shared
photos, plus malformed files: each is decoded by the reference, Pillow's
`Image.open(f).convert('RGB')`, through scripts/pillow-decode.py --no-transpose, and
golden.json keeps the sha256 of its RGB bytes, or the error when Pillow refuses the file.
`deliberate` in golden.json lists the files where we knowingly answer otherwise (and why).

PNGs are written by the small encoder below, not by Pillow, which cannot write most of these
variants. Deterministic: same inputs, same bytes. Needs Debian's python3-pil (Pillow 9.4):
    apt-get install -y python3-pil
    /usr/bin/python3 scripts/make-png-fixtures.py
Source photos: $PHOTOS_DIR, default ../shared/data/photos beside the repository.
"""

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import PIL
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test" / "fixtures" / "png"
PHOTOS = Path(os.environ.get("PHOTOS_DIR", ROOT.parent / "shared" / "data" / "photos"))

CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
SIG = b"\x89PNG\r\n\x1a\n"


class Lcg:
    """A fixed PRNG, so that noise does not depend on Python's `random` implementation."""

    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFF

    def next(self):
        self.state = (1664525 * self.state + 1013904223) & 0xFFFFFFFF
        return self.state >> 8


# ---- the encoder --------------------------------------------------------------------------------

def chunk(ctype, data, crc=None):
    c = zlib.crc32(ctype + data) if crc is None else crc
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", c & 0xFFFFFFFF)


def pack_row(samples, depth):
    """Samples (ints) of one row to bytes at `depth` bits each, rows padded to a byte."""
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b"".join(struct.pack(">H", v) for v in samples)
    out = bytearray()
    per = 8 // depth
    for i in range(0, len(samples), per):
        b = 0
        group = samples[i:i + per]
        for j, v in enumerate(group):
            b |= v << (8 - depth * (j + 1))
        out.append(b)
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def filter_row(ftype, row, prev, bpp):
    out = bytearray([ftype])
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][ftype]
        out.append((x - pred) & 0xFF)
    return bytes(out)


def raw_stream(pixels, w, h, ct, depth, interlace, filters):
    """Filtered scanlines (with filter bytes) of `pixels` (rows of w*channels samples).
    `filters`: a filter type for every row, or None to cycle 0..4 row by row."""
    ch = CHANNELS[ct]
    bpp = max(1, ch * depth // 8)
    out = bytearray()
    n = 0

    def emit(rows):
        nonlocal n
        prev = None
        for samples in rows:
            row = pack_row(samples, depth)
            if prev is None:
                prev = bytes(len(row))
            f = (n % 5) if filters is None else filters
            out.extend(filter_row(f, row, prev, bpp))
            prev = row
            n += 1

    if not interlace:
        emit(pixels)
    else:
        for x0, y0, dx, dy in ADAM7:
            if x0 >= w or y0 >= h:
                continue
            rows = []
            for y in range(y0, h, dy):
                r = pixels[y]
                rows.append([r[x * ch + k] for x in range(x0, w, dx) for k in range(ch)])
            emit(rows)
    return bytes(out)


def compress(raw, mode):
    if mode == "stored":
        return zlib.compress(raw, 0)
    if mode == "fixed":
        c = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_FIXED)
        return c.compress(raw) + c.flush()
    if mode == "huffman":
        c = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_HUFFMAN_ONLY)
        return c.compress(raw) + c.flush()
    if mode == "rle":
        c = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
        return c.compress(raw) + c.flush()
    if mode == "small-window":
        c = zlib.compressobj(9, zlib.DEFLATED, 9)
        return c.compress(raw) + c.flush()
    return zlib.compress(raw, 9 if mode == "best" else 6)


def encode(w, h, ct, depth, pixels, interlace=False, filters=None, zmode="default", split=None,
           pre=b"", post=b"", palette=None, iend=True, mutate=None):
    raw = raw_stream(pixels, w, h, ct, depth, interlace, filters)
    if mutate:
        raw = mutate(raw)
    z = compress(raw, zmode)
    if split is None:
        idats = [z]
    else:
        idats, pos = [], 0
        for n in split:
            idats.append(z[pos:pos + n])
            pos += n
        idats.append(z[pos:])
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ct, 0, 0, 1 if interlace else 0)
    plte = chunk(b"PLTE", bytes(palette)) if palette is not None else b""
    body = b"".join(chunk(b"IDAT", d) for d in idats)
    return SIG + chunk(b"IHDR", ihdr) + plte + pre + body + post + (chunk(b"IEND", b"") if iend else b"")


# ---- content ------------------------------------------------------------------------------------

def synthetic(w, h, ch, maxval, seed):
    """Gradients plus noise plus flat runs: every filter sees nontrivial predictions."""
    rng = Lcg(seed)
    rows = []
    for y in range(h):
        row = []
        for x in range(w):
            for k in range(ch):
                if (y // 3) % 3 == 2:
                    v = (x * 7 + y * 13 + k * 50) % (maxval + 1)
                elif (x // 5) % 4 == 3:
                    v = (y * maxval // max(1, h - 1) + k) % (maxval + 1)
                else:
                    v = rng.next() % (maxval + 1)
                row.append(v)
        rows.append(row)
    return rows


def gray16_values(w, h, seed):
    """16-bit gray where Pillow 9.4's clipping shows: half the samples under 256, some at the
    edges (0, 254, 255, 256), the rest anywhere up to 65535."""
    rng = Lcg(seed)
    edge = [0, 1, 254, 255, 256, 257, 65535, 511]
    rows = []
    for y in range(h):
        row = []
        for x in range(w):
            r = rng.next()
            if (x + y) % 7 == 0:
                row.append(edge[r % len(edge)])
            elif r & 1:
                row.append(r % 256)
            else:
                row.append(r % 65536)
        rows.append(row)
    return rows


def from_image(im, ct, depth):
    """Rows of samples of a Pillow image for colour type/depth (16-bit: v*257 + a low-byte
    pattern, so the low byte is not a copy of the high one)."""
    w, h = im.size
    mode = {0: "L", 2: "RGB", 4: "LA", 6: "RGBA"}[ct]
    data = list(im.convert(mode).getdata())
    rows = []
    for y in range(h):
        row = []
        for x in range(w):
            px = data[y * w + x]
            px = (px,) if isinstance(px, int) else px
            for k, v in enumerate(px):
                if depth == 16:
                    v = v * 256 + ((x * 31 + y * 17 + k * 5) & 0xFF)
                elif depth < 8:
                    v >>= 8 - depth
                row.append(v)
        rows.append(row)
    return rows


def photo(name, box, size=None):
    with Image.open(PHOTOS / name) as im:
        im = im.convert("RGB").crop(box)
        return im.resize(size, Image.Resampling.LANCZOS) if size else im


def with_alpha(im, seed):
    """RGBA with an alpha pattern that includes fully transparent pixels."""
    rgba = im.convert("RGBA")
    a = Image.new("L", im.size)
    rng = Lcg(seed)
    a.putdata([0 if (i % 11) == 0 else rng.next() % 256 for i in range(im.size[0] * im.size[1])])
    rgba.putalpha(a)
    return rgba


def palette_bytes(n, seed):
    rng = Lcg(seed)
    return [rng.next() % 256 for _ in range(3 * n)]


# ---- the fixtures -------------------------------------------------------------------------------

files = {}
deliberate = {}


def add(name, data):
    files[name + ".png"] = data


def colour_types():
    for ct, depth in [(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (4, 8), (4, 16), (2, 8), (2, 16),
                      (6, 8), (6, 16), (3, 1), (3, 2), (3, 4), (3, 8)]:
        ch = CHANNELS[ct]
        for interlace in (False, True):
            for w, h, tag in [(37, 23, ""), (1, 1, "-1x1"), (1, 13, "-1x13"), (13, 1, "-13x1"), (5, 3, "-5x3")]:
                if tag and (ct, depth) not in [(0, 1), (0, 4), (0, 16), (2, 8), (3, 2), (3, 8), (6, 16), (4, 8)]:
                    continue
                seed = ct * 100 + depth * 7 + w * 3 + h + (1000 if interlace else 0)
                if ct == 0 and depth == 16:
                    px = gray16_values(w, h, seed)
                else:
                    px = synthetic(w, h, ch, (1 << depth) - 1, seed)
                palette = None
                if ct == 3:
                    # Fewer entries than the indices in use: the rest are Pillow's gray ramp.
                    n = {1: 2, 2: 3, 4: 10, 8: 100}[depth]
                    palette = palette_bytes(n, seed)
                name = f"ct{ct}-d{depth}{'-adam7' if interlace else ''}{tag}"
                add(name, encode(w, h, ct, depth, px, interlace=interlace, palette=palette))


def filters():
    # One filter throughout, per type of pixel layout (bpp 1, 2, 3, 6, 8; sub-byte).
    for f in range(5):
        for ct, depth in [(0, 2), (0, 8), (4, 8), (2, 8), (2, 16), (6, 16)]:
            px = synthetic(29, 11, CHANNELS[ct], (1 << depth) - 1, f * 13 + ct + depth)
            add(f"filter{f}-ct{ct}-d{depth}", encode(29, 11, ct, depth, px, filters=f))
            add(f"filter{f}-ct{ct}-d{depth}-adam7", encode(29, 11, ct, depth, px, filters=f, interlace=True))


def adam7_sizes():
    # Sizes where some passes are empty or one pixel wide/tall.
    for w, h in [(2, 2), (3, 5), (9, 1), (1, 9), (4, 4), (8, 8), (9, 9), (17, 3)]:
        px = synthetic(w, h, 3, 255, w * 10 + h)
        add(f"adam7-rgb8-{w}x{h}", encode(w, h, 2, 8, px, interlace=True))
        px = synthetic(w, h, 1, 3, w * 10 + h)
        add(f"adam7-gray2-{w}x{h}", encode(w, h, 0, 2, px, interlace=True))


def palettes_and_trns():
    px8 = synthetic(19, 7, 1, 255, 5)
    add("pal8-full256", encode(19, 7, 3, 8, px8, palette=palette_bytes(256, 1)))
    add("pal8-one-entry", encode(19, 7, 3, 8, px8, palette=palette_bytes(1, 2)))
    add("pal8-no-plte", encode(19, 7, 3, 8, px8))
    add("pal8-plte-len-not-3n", encode(19, 7, 3, 8, px8, palette=palette_bytes(40, 3) + [9]))
    add("pal8-empty-plte", encode(19, 7, 3, 8, px8, palette=[]))
    add("pal8-two-plte", encode(19, 7, 3, 8, px8, palette=palette_bytes(200, 4),
                                pre=chunk(b"PLTE", bytes(palette_bytes(20, 5)))))
    add("pal8-plte-after-idat", encode(19, 7, 3, 8, px8, post=chunk(b"PLTE", bytes(palette_bytes(256, 6)))))
    add("pal8-257-entries", encode(19, 7, 3, 8, px8, palette=palette_bytes(257, 7)))
    px4 = synthetic(19, 7, 1, 15, 6)
    add("pal4-trns", encode(19, 7, 3, 4, px4, palette=palette_bytes(16, 8), pre=chunk(b"tRNS", bytes(range(0, 256, 20)))))
    add("pal4-trns-single", encode(19, 7, 3, 4, px4, palette=palette_bytes(16, 9), pre=chunk(b"tRNS", b"\xff\xff\x00")))
    add("rgb8-plte-suggested", encode(19, 7, 2, 8, synthetic(19, 7, 3, 255, 7), palette=palette_bytes(16, 10)))
    add("gray8-trns", encode(19, 7, 0, 8, px8, pre=chunk(b"tRNS", b"\x00\x2a")))
    add("gray8-trns-over-255", encode(19, 7, 0, 8, px8, pre=chunk(b"tRNS", b"\x01\x2a")))
    add("gray1-trns", encode(19, 7, 0, 1, synthetic(19, 7, 1, 1, 8), pre=chunk(b"tRNS", b"\x00\x01")))
    add("gray16-trns", encode(19, 7, 0, 16, gray16_values(19, 7, 9), pre=chunk(b"tRNS", b"\x01\x00")))
    add("rgb8-trns", encode(19, 7, 2, 8, synthetic(19, 7, 3, 255, 10), pre=chunk(b"tRNS", b"\x00\x10\x00\x20\x00\x30")))
    add("rgb16-trns", encode(19, 7, 2, 16, synthetic(19, 7, 3, 65535, 11), pre=chunk(b"tRNS", b"\x10\x10\x20\x20\x30\x30")))
    add("rgba8-trns-ignored", encode(19, 7, 6, 8, synthetic(19, 7, 4, 255, 12), pre=chunk(b"tRNS", b"\x00\x10")))
    add("gray8-trns-short", encode(19, 7, 0, 8, px8, pre=chunk(b"tRNS", b"\x00")))
    add("rgb8-trns-short", encode(19, 7, 2, 8, synthetic(19, 7, 3, 255, 13), pre=chunk(b"tRNS", b"\x00\x10\x00\x20")))


def streams():
    px = synthetic(41, 17, 3, 255, 21)
    for mode in ["stored", "fixed", "huffman", "rle", "best", "small-window"]:
        add(f"zlib-{mode}", encode(41, 17, 2, 8, px, zmode=mode))
    big = synthetic(200, 60, 3, 255, 22)  # more than one stored block, several IDATs
    add("zlib-stored-multiblock", encode(200, 60, 2, 8, big, zmode="stored", split=[1000, 1, 0, 7000, 20000]))
    add("idat-split-1-byte", encode(41, 17, 2, 8, px, split=[1] * 40))
    add("idat-zero-length", encode(41, 17, 2, 8, px, split=[0, 5, 0, 0, 100, 0]))
    flat = [[(x // 8) * 30 % 256 for x in range(300 * 3)] for _ in range(40)]  # long matches
    add("zlib-long-matches", encode(300, 40, 2, 8, flat))


def photos():
    add("photo-chelsea-rgb8", (PHOTOS / "chelsea.png").read_bytes())  # as its encoder wrote it
    coffee = photo("coffee.png", (200, 100, 360, 220))
    add("photo-coffee-rgba8-adam7", encode(160, 120, 6, 8, from_image(with_alpha(coffee, 31), 6, 8), interlace=True))
    add("photo-coffee-rgb16", encode(96, 72, 2, 16, from_image(coffee.resize((96, 72)), 2, 16)))
    astro = photo("astronaut.png", (150, 40, 278, 168))
    q = astro.quantize(256)
    add("photo-astronaut-pal8", encode(128, 128, 3, 8, [list(q.tobytes()[y * 128:(y + 1) * 128]) for y in range(128)],
                                       palette=list(q.getpalette()[:768])))
    q4 = astro.resize((64, 64)).quantize(16)
    add("photo-astronaut-pal4-adam7", encode(64, 64, 3, 4, [list(q4.tobytes()[y * 64:(y + 1) * 64]) for y in range(64)],
                                             interlace=True, palette=list(q4.getpalette()[:48])))
    with Image.open(PHOTOS / "camera.png") as cam:
        cam = cam.convert("L").crop((180, 60, 300, 180))
    add("photo-camera-gray16", encode(120, 120, 0, 16, from_image(cam, 0, 16)))
    add("photo-camera-gray16-dark", encode(120, 120, 0, 16, [[v >> 8 for v in r] for r in from_image(cam, 0, 16)]))
    add("photo-camera-graya16-adam7", encode(120, 120, 4, 16, from_image(with_alpha(cam, 3).convert("LA"), 4, 16), interlace=True))
    add("photo-camera-gray4", encode(120, 120, 0, 4, from_image(cam, 0, 4)))


def malformed():
    """Structure and data defects: Pillow's answer is the golden one (sha256 or error)."""
    w, h = 23, 9
    px = synthetic(w, h, 3, 255, 41)
    good = encode(w, h, 2, 8, px)
    raw = raw_stream(px, w, h, 2, 8, False, None)
    z = zlib.compress(raw)
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    iend = chunk(b"IEND", b"")

    def png(*parts):
        return SIG + ihdr + b"".join(parts)

    add("bad-no-iend", good[:-12])
    add("bad-iend-cut", good[:-1])
    add("bad-trailing-junk", good + b"not a chunk, just bytes after IEND" * 5)
    add("bad-idat-crc", png(chunk(b"IDAT", z, crc=1234), iend))
    add("bad-iend-crc", png(chunk(b"IDAT", z), chunk(b"IEND", b"", crc=99)))
    add("bad-text-crc-after", png(chunk(b"IDAT", z), chunk(b"tEXt", b"a\0b", crc=5), iend))
    add("bad-text-crc-before", png(chunk(b"tEXt", b"a\0b", crc=5), chunk(b"IDAT", z), iend))
    add("bad-ihdr-crc", SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0), crc=7) + chunk(b"IDAT", z) + iend)
    add("bad-chunk-type-before", png(chunk(b"ab!d", b"xy"), chunk(b"IDAT", z), iend))
    add("bad-chunk-type-after", png(chunk(b"IDAT", z), chunk(b"ab!d", b"xy"), iend))
    add("bad-unknown-critical-before", png(chunk(b"ABCD", b"xy"), chunk(b"IDAT", z), iend))
    add("bad-chunk-cut-after", png(chunk(b"IDAT", z), chunk(b"tEXt", b"comment\0" + b"x" * 40)[:-20]))
    add("bad-chunk-cut-before", png(chunk(b"tEXt", b"comment\0" + b"x" * 40))[:-20])
    add("bad-idat-extra-rows", png(chunk(b"IDAT", zlib.compress(raw + raw[:3 * (1 + w * 3)])), iend))
    add("bad-idat-junk-after-zlib", png(chunk(b"IDAT", z + b"junk" * 10), iend))
    add("bad-adler", png(chunk(b"IDAT", z[:-1] + bytes([z[-1] ^ 0x40])), iend))
    add("bad-no-adler", png(chunk(b"IDAT", z[:-4]), iend))
    add("bad-cut-in-idat", png(chunk(b"IDAT", z))[:-(len(z) // 2 + 4)])
    add("bad-cut-in-adler", png(chunk(b"IDAT", z))[:-6])
    add("bad-zlib-cut-mid-row", png(chunk(b"IDAT", zlib.compress(raw[:len(raw) // 2 + 5])), iend))
    add("bad-zlib-fewer-rows", png(chunk(b"IDAT", zlib.compress(raw[:5 * (1 + w * 3)])), iend))
    deliberate["bad-zlib-fewer-rows.png"] = (
        "the zlib stream ends after 5 of 9 rows: Pillow pads with black rows, we refuse (422) "
        "rather than invent pixels that are not in the file")
    add("bad-filter-type", png(chunk(b"IDAT", zlib.compress(raw[:2 * (1 + w * 3)] + b"\x05" + raw[2 * (1 + w * 3) + 1:])), iend))
    add("bad-zlib-header", png(chunk(b"IDAT", b"\x78\x00" + z[2:]), iend))
    add("bad-zlib-dictionary", png(chunk(b"IDAT", b"\x78\xbb" + z[2:]), iend))
    add("bad-deflate-data", png(chunk(b"IDAT", z[:20] + bytes([z[20] ^ 0xFF]) + z[21:]), iend))
    add("bad-idat-split-by-text", png(chunk(b"IDAT", z[:30]), chunk(b"tEXt", b"a\0b"), chunk(b"IDAT", z[30:]), iend))
    add("bad-no-idat", png(iend))
    add("bad-idat-after-iend", png(iend, chunk(b"IDAT", z)))
    add("bad-idat-length-past-eof", png(struct.pack(">I", len(z) + 1000) + b"IDAT" + z))
    add("bad-iend-only-truncated-idat", png(chunk(b"IDAT", z[:-30])))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    colour_types()
    filters()
    adam7_sizes()
    palettes_and_trns()
    streams()
    photos()
    malformed()
    for name, data in files.items():
        (OUT / name).write_bytes(data)
    paths = [str(OUT / n) for n in files]
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "pillow-decode.py"), "--no-transpose", *paths],
                         check=True, capture_output=True, text=True)
    golden = {}
    for line in res.stdout.splitlines():
        r = json.loads(line)
        name = r.pop("file")
        golden[name] = r
    assert set(golden) == set(files), "pillow-decode.py skipped a file"
    out = {
        "generator": "scripts/make-png-fixtures.py",
        "reference": "scripts/pillow-decode.py --no-transpose: sha256 of Image.open(f).convert('RGB') bytes, or Pillow's error",
        "pillow": PIL.__version__,
        "deliberate": deliberate,
        "files": dict(sorted(golden.items())),
    }
    (OUT / "golden.json").write_text(json.dumps(out, indent=1) + "\n")
    size = sum(len(d) for d in files.values())
    print(f"{len(files)} files, {size} bytes, Pillow {PIL.__version__}; refused by Pillow:",
          sorted(n for n, r in golden.items() if "error" in r))


if __name__ == "__main__":
    main()
