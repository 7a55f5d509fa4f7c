#!/usr/bin/env python3
"""Makes the fixtures of test/node/gif.test.ts and test/node/webp.test.ts.

    /usr/bin/python3 scripts/make-gif-webp-fixtures.py [gif] [webp]     (both when none is named)

The reference is the project's: Pillow's `ImageOps.exif_transpose(Image.open(f))`, first frame,
`.convert('RGB')` (scripts/pillow-decode.py, whose `decode` this script imports). Needs Debian 12's
python3-pil (Pillow 9.4, libwebp 1.2) and, for WebP, cwebp (package `webp`):
    apt-get install -y python3-pil webp

test/fixtures/gif/
  pillow-tests.json  Pillow's answer for each ../shared/data/pillow-tests/*.gif (Pillow's own test
                     images, read from there by the tests, not copied): size and sha256 of the RGB
                     bytes, or the error when Pillow refuses the file.
  *.gif + manifest.json  small GIFs made here for what the corpus lacks (LZW minimum code sizes 0, 1
                     and 12, a first frame past the logical screen, a transparency fill, an end code
                     before the frame is full, a frame of width 0 at x = 0, bombs), with Pillow's
                     answer for each.
  mutants.json       deterministic mutants of the corpus and of the files above (bit flips, bytes
                     set at structural offsets, truncations), each as edits to apply to its source,
                     with Pillow's answer.
test/fixtures/webp/: see make_webp below.

Deterministic: a fixed LCG drives every choice, so reruns give the same bytes (cwebp output
depends on the installed libwebp, 1.2.4 here).
"""

import hashlib
import importlib.util
import io
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import PIL
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("PILLOW_TESTS_DIR", ROOT.parent / "shared" / "data" / "pillow-tests"))
PHOTOS = Path(os.environ.get("PHOTOS_DIR", ROOT.parent / "shared" / "data" / "photos"))
GIF_OUT = ROOT / "test" / "fixtures" / "gif"
WEBP_OUT = ROOT / "test" / "fixtures" / "webp"

_spec = importlib.util.spec_from_file_location("pillow_decode", ROOT / "scripts" / "pillow-decode.py")
pillow_decode = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pillow_decode)
Image.MAX_IMAGE_PIXELS = None
warnings.simplefilter("ignore")


class Lcg:
    """A fixed PRNG, so that choices do not depend on Python's `random` implementation."""

    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFF

    def next(self):
        self.state = (1664525 * self.state + 1013904223) & 0xFFFFFFFF
        return self.state

    def below(self, n):
        return (self.next() >> 8) % n

    def byte(self):
        return self.next() >> 24


# Past this many pixels the reference is not run (Pillow would allocate gigabytes for some bombs):
# the answer is {"tooLarge": [w, h]}, and the Worker's pixel limit (16 MP) refuses such files.
REFERENCE_MAX_PIXELS = 40_000_000


def answer(data, name="(bytes)"):
    """Pillow's answer for a file's bytes: size and sha256 of the RGB decode, or the error."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.size[0] * im.size[1] > REFERENCE_MAX_PIXELS:
                return {"tooLarge": list(im.size)}
    except Exception:  # noqa: BLE001 - refused at open: decode() below says how
        pass
    try:
        rgb = pillow_decode.decode(io.BytesIO(data), True)
    except Exception as err:  # noqa: BLE001 - any refusal is an answer
        message = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", "<file>", f"{type(err).__name__}: {err}")
        return {"error": message.replace(name, "<file>")[:160]}
    return {"width": rgb.width, "height": rgb.height, "sha256": hashlib.sha256(rgb.tobytes()).hexdigest()}


def write_json(path, obj):
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")


# --------------------------------------------------------------------------------------------
# GIF


def sub_blocks(data, rng, most=255):
    out = bytearray()
    i = 0
    while i < len(data):
        k = 1 + rng.below(most)
        chunk = data[i:i + k]
        out += bytes([len(chunk)]) + chunk
        i += k
    return bytes(out) + b"\x00"


def lzw_literals(pixels, bits, clear_every=None, end=True):
    """LZW codes as a decoder (GifDecode.c) reads them: every pixel a literal, code size growing
    as the decoder's table grows. Not compact; exact."""
    clear = 1 << bits
    codes = [(clear, bits + 1)]
    nxt, size, first = clear + 2, bits + 1, True
    for i, p in enumerate(pixels):
        if clear_every and i and i % clear_every == 0:
            codes.append((clear, size))
            nxt, size, first = clear + 2, bits + 1, True
        codes.append((p, size))
        if not first and nxt < 4096:
            if nxt == (1 << size) - 1 and size < 12:
                size += 1
            nxt += 1
        first = False
    if end:
        codes.append((clear + 1, size))
    out, acc, nb = bytearray(), 0, 0
    for c, s in codes:
        acc |= c << nb
        nb += s
        while nb >= 8:
            out.append(acc & 255)
            acc >>= 8
            nb -= 8
    if nb:
        out.append(acc & 255)
    return bytes(out)


def gif_file(screen, frame, data, rng, gpal=None, lpal=None, gce=None, interlace=False, tail=b";"):
    w, h = screen
    flags = 0
    if gpal is not None:
        flags = 0x80 | ((len(gpal) // 3).bit_length() - 2)
    out = b"GIF89a" + struct.pack("<HHBBB", w, h, flags, 0, 0) + (gpal or b"")
    if gce is not None:
        out += b"\x21\xf9\x04" + bytes([gce[0]]) + b"\x00\x00" + bytes([gce[1]]) + b"\x00"
    x0, y0, fw, fh, bits = frame
    lflags = 0x40 if interlace else 0
    if lpal is not None:
        lflags |= 0x80 | ((len(lpal) // 3).bit_length() - 2)
    out += b"\x2c" + struct.pack("<HHHHB", x0, y0, fw, fh, lflags) + (lpal or b"") + bytes([bits])
    return out + sub_blocks(data, rng) + tail


def crafted_gifs():
    rng = Lcg(0x6126)
    pal = lambda n: bytes(rng.byte() for _ in range(3 * n))  # noqa: E731
    px = lambda n, top: [rng.below(top) for _ in range(n)]  # noqa: E731
    files = {}
    files["lzw-bits0"] = gif_file((7, 5), (0, 0, 7, 5, 0), lzw_literals(px(35, 1), 0), rng, gpal=pal(4))
    files["lzw-bits1"] = gif_file((9, 4), (0, 0, 9, 4, 1), lzw_literals(px(36, 2), 1), rng, gpal=pal(2))
    files["lzw-bits12"] = gif_file((16, 16), (0, 0, 16, 16, 12), lzw_literals(px(256, 256), 12, 50), rng, gpal=pal(256))
    files["lzw-bits9-literals-over-255"] = gif_file(
        (20, 10), (0, 0, 20, 10, 9), lzw_literals(px(200, 512), 9), rng, gpal=pal(256))
    files["interlaced-13x11"] = gif_file(
        (13, 11), (0, 0, 13, 11, 8), lzw_literals(px(143, 256), 8, 60), rng, gpal=pal(256), interlace=True)
    files["interlaced-5x3-local-palette"] = gif_file(
        (5, 3), (0, 0, 5, 3, 4), lzw_literals(px(15, 16), 4), rng, gpal=pal(16), lpal=pal(16), interlace=True)
    files["frame-past-screen-transparency"] = gif_file(
        (10, 10), (6, 4, 8, 9, 4), lzw_literals(px(72, 16), 4), rng, gpal=pal(16), gce=(0x09, 3))
    files["frame-offset-no-transparency"] = gif_file(
        (12, 9), (3, 2, 5, 4, 3), lzw_literals(px(20, 8), 3), rng, gpal=pal(8))
    files["no-palette-transparency"] = gif_file((6, 6), (1, 1, 4, 4, 8), lzw_literals(px(16, 256), 8), rng, gce=(0x01, 200))
    files["short-palette-high-indices"] = gif_file((8, 8), (0, 0, 8, 8, 8), lzw_literals(px(64, 256), 8), rng, gpal=pal(2))
    files["zero-width-frame-at-origin"] = gif_file((6, 5), (0, 0, 0, 3, 8), lzw_literals(px(30, 256), 8), rng, gpal=pal(256))
    files["zero-width-frame-at-x2"] = gif_file((6, 5), (2, 0, 0, 3, 8), lzw_literals(px(30, 256), 8), rng, gpal=pal(256))
    files["comment-and-app-extensions"] = (
        b"GIF89a" + struct.pack("<HHBBB", 4, 4, 0x80, 0, 0) + pal(2)
        + b"\x21\xfe\x00" + b"\x21\xfe\x03abc\x02de\x00" + b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
        + b"\x21\x01\x0c" + bytes(12) + b"\x00" + b"\x07\x99"  # plain text extension, stray bytes
        + b"\x2c" + struct.pack("<HHHHB", 0, 0, 4, 4, 0) + b"\x02"
        + sub_blocks(lzw_literals(px(16, 2), 2), rng) + b";")
    # An end code before the frame is full: Pillow returns to its read loop, and when the next
    # 64 KiB read finds more of the file it decodes what follows the end code as more sub-blocks.
    # Here they hold a second LZW stream (clear code first) with the rest of the frame. The first
    # stream is 32 codes of 9 bits, so it ends on a byte boundary and the second starts clean.
    first = lzw_literals(px(30, 256), 8)
    assert len(first) == 36
    rest = sub_blocks(lzw_literals(px(34, 256), 8), rng)
    padding = b"\x21\xfe" + sub_blocks(bytes(70000), rng) + b";"  # a comment Pillow never reaches
    p256 = pal(256)
    files["end-code-then-more-blocks"] = gif_file((8, 8), (0, 0, 8, 8, 8), first, rng, gpal=p256, tail=rest + b";")
    files["end-code-then-more-blocks-64k"] = gif_file(
        (8, 8), (0, 0, 8, 8, 8), first, rng, gpal=p256, tail=rest + padding)
    files["end-code-then-eof"] = gif_file((8, 8), (0, 0, 8, 8, 8), lzw_literals(px(30, 256), 8), rng, gpal=pal(256))
    files["truncated-data"] = gif_file((8, 8), (0, 0, 8, 8, 8), lzw_literals(px(64, 256), 8), rng, gpal=pal(256))[:-12]
    files["broken-first-code"] = gif_file((4, 4), (0, 0, 4, 4, 2), bytes([0x07, 0xff, 0xff]), rng, gpal=pal(4))
    files["bits13"] = gif_file((4, 4), (0, 0, 4, 4, 13), bytes(10), rng, gpal=pal(4))
    # Bombs: a huge logical screen from a tiny file; an LZW stream of clear codes only.
    files["bomb-screen-65535"] = gif_file((65535, 65535), (0, 0, 1, 1, 2), lzw_literals([1], 2), rng, gpal=pal(4))
    files["bomb-frame-extent"] = gif_file((4, 4), (65000, 65000, 500, 500, 2), lzw_literals([1], 2), rng, gpal=pal(4))
    # Minimum code size 7: every byte 0x80 is one clear code.
    files["endless-clear-codes"] = gif_file((100, 100), (0, 0, 100, 100, 7), bytes([0x80]) * 60000, rng, gpal=pal(4))
    return files


def mutants(sources, seed, per_file, structural_span):
    """Edits to each source: [offset, value] pairs (bit flips, structural bytes set to telling
    values) or a truncation; each with Pillow's answer for the result."""
    rng = Lcg(seed)
    out = []
    for name, data in sources:
        for _ in range(per_file):
            kind = rng.below(4)
            edits, truncate = [], None
            if kind == 0:
                for _ in range(1 + rng.below(3)):
                    off = rng.below(len(data))
                    edits.append([off, data[off] ^ (1 << rng.below(8))])
            elif kind == 1:
                truncate = rng.below(len(data))
            elif kind == 2:
                off = rng.below(min(len(data), structural_span))
                edits.append([off, rng.byte()])
            else:
                off = rng.below(len(data))
                edits.append([off, [0, 1, 2, 0x21, 0x2C, 0x3B, 0xFF, 0x7F][rng.below(8)]])
            b = bytearray(data)
            for off, val in edits:
                b[off] = val
            if truncate is not None:
                b = b[:truncate]
            entry = {"source": name, "edits": edits, **answer(bytes(b))}
            if truncate is not None:
                entry["truncate"] = truncate
            out.append(entry)
    return out


def make_gif():
    GIF_OUT.mkdir(parents=True, exist_ok=True)
    corpus = sorted(CORPUS.glob("*.gif"))
    write_json(GIF_OUT / "pillow-tests.json",
               {"pillow": PIL.__version__, "files": {p.name: answer(p.read_bytes(), str(p)) for p in corpus}})
    manifest = {}
    for name, data in crafted_gifs().items():
        (GIF_OUT / f"{name}.gif").write_bytes(data)
        manifest[f"{name}.gif"] = answer(data)
    write_json(GIF_OUT / "manifest.json", {"pillow": PIL.__version__, "files": manifest})
    sources = [(f"pillow-tests/{p.name}", p.read_bytes()) for p in corpus if p.stat().st_size <= 30000]
    sources += [(f"gif/{n}", (GIF_OUT / n).read_bytes()) for n in sorted(manifest) if (GIF_OUT / n).stat().st_size <= 30000]
    write_json(GIF_OUT / "mutants.json", {"pillow": PIL.__version__, "mutants": mutants(sources, 0x61F, 12, 800)})
    print(f"gif: {len(corpus)} corpus answers, {len(manifest)} crafted files, {len(sources) * 12} mutants")


def main():
    which = set(sys.argv[1:]) or {"gif", "webp"}
    if "gif" in which:
        make_gif()
    if "webp" in which:
        make_webp()


def riff_chunks(data):
    """[(fourcc, payload)] of a RIFF/WEBP file."""
    out, pos = [], 12
    while pos + 8 <= len(data):
        size = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        out.append((data[pos:pos + 4], data[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


def chunk(tag, payload):
    return tag + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) & 1 else b"")


def riff(*chunks):
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def u24(v):
    return struct.pack("<I", v)[:3]


def animated(canvas, frames, bg=b"\xff\xff\xff\xff"):
    """An animation from still WebPs: frames are (x, y, still file bytes), x and y even."""
    w, h = canvas
    alpha = any(tag == b"ALPH" or (tag == b"VP8L" and p[4] & 0x10) for _, _, f in frames for tag, p in riff_chunks(f))
    vp8x = bytes([0x02 | (0x10 if alpha else 0), 0, 0, 0]) + u24(w - 1) + u24(h - 1)
    out = [chunk(b"VP8X", vp8x), chunk(b"ANIM", bg + b"\x00\x00")]
    for x, y, f in frames:
        parts = [(t, p) for t, p in riff_chunks(f) if t in (b"ALPH", b"VP8 ", b"VP8L")]
        fw, fh = Image.open(io.BytesIO(f)).size
        head = u24(x // 2) + u24(y // 2) + u24(fw - 1) + u24(fh - 1) + u24(100) + b"\x00"
        out.append(chunk(b"ANMF", head + b"".join(chunk(t, p) for t, p in parts)))
    return riff(*out)


def cwebp(png_bytes, *args):
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.png", Path(tmp) / "out.webp"
        src.write_bytes(png_bytes)
        subprocess.run(["cwebp", "-quiet", *args, str(src), "-o", str(dst)], check=True)
        return dst.read_bytes()


def png(im):
    bio = io.BytesIO()
    im.save(bio, "PNG")
    return bio.getvalue()


def with_alpha(im, seed):
    """RGBA: a diagonal alpha ramp, a fully transparent block (whose colours must survive)."""
    rng = Lcg(seed)
    w, h = im.size
    a = Image.new("L", im.size)
    a.putdata([min(255, (x * 255 // w + y * 255 // h) // 2 + rng.below(8)) for y in range(h) for x in range(w)])
    a.paste(0, (w // 4, h // 4, w // 2, h // 2))
    rgba = im.convert("RGBA")
    rgba.putalpha(a)
    return rgba


def exif_orientation(value):
    """A minimal little-endian TIFF with IFD0 holding Orientation, after "Exif\\0\\0"."""
    return b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00" + struct.pack("<H", value) + b"\x00\x00\x00\x00\x00\x00"


def with_exif(still, orientation, flag=True):
    """A still WebP rewrapped as VP8X with an EXIF chunk (and the EXIF flag unless flag=False)."""
    parts = [(t, p) for t, p in riff_chunks(still) if t != b"VP8X"]
    w, h = Image.open(io.BytesIO(still)).size
    alpha = any(t == b"ALPH" for t, _ in parts)
    flags = (0x08 if flag else 0) | (0x10 if alpha else 0)
    return riff(chunk(b"VP8X", bytes([flags, 0, 0, 0]) + u24(w - 1) + u24(h - 1)),
                *(chunk(t, p) for t, p in parts), chunk(b"EXIF", exif_orientation(orientation)))


WEBP_LICENSE = """# WebP fixtures

Made by `scripts/make-gif-webp-fixtures.py webp` (deterministic with Debian 12's cwebp 1.2.4).
`manifest.json` holds Pillow 9.4's answer for each file (size and sha256 of its RGB decode, EXIF
orientation applied) and, for small lossy ones, Pillow's RGB as `<name>.rgb`; `pillow-tests.json`
Pillow's answers for ../shared/data/pillow-tests/*.webp (read in place, not copied).

| fixtures | made from | author / source | license |
| --- | --- | --- | --- |
| chelsea-* | chelsea.png, shrunk, re-encoded | scikit-image sample data, photo by Stefan van der Walt | CC0 |
| coffee-* | coffee.png, shrunk, alpha drawn by the script | scikit-image sample data, photo by Rachel Michetti | CC0 |
| astronaut-* | astronaut.png, shrunk | scikit-image sample data, NASA | public domain |
| anim-* | the files above as animation frames | as above | as above |
| big-*, mid-* | flat colours drawn by the script | this project | Apache-2.0, as the project |

The source photos are the project's shared sample photos (shared/data/photos, whose LICENSE.md
this note repeats): all free of copyright restrictions.
"""


def make_webp():
    """test/fixtures/webp/: re-encodings of the shared photos made with cwebp (lossy, lossless,
    alpha, near-lossless), EXIF orientations, animations built from them (a first frame offset
    on its canvas), one large flat image for the memory budget, with Pillow's answer for each in
    manifest.json and, for lossy files, Pillow's RGB (*.rgb) to compare within a tolerance.
    pillow-tests.json: Pillow's answers for ../shared/data/pillow-tests/*.webp."""
    WEBP_OUT.mkdir(parents=True, exist_ok=True)
    for old in WEBP_OUT.glob("*"):
        old.unlink()
    (WEBP_OUT / "LICENSE.md").write_text(WEBP_LICENSE)
    corpus = sorted(CORPUS.glob("*.webp"))
    write_json(WEBP_OUT / "pillow-tests.json",
               {"pillow": PIL.__version__, "files": {p.name: answer(p.read_bytes(), str(p)) for p in corpus}})

    chelsea = Image.open(PHOTOS / "chelsea.png").convert("RGB").resize((150, 100), Image.LANCZOS)
    coffee = Image.open(PHOTOS / "coffee.png").convert("RGB").resize((120, 80), Image.LANCZOS)
    astronaut = Image.open(PHOTOS / "astronaut.png").convert("RGB").resize((96, 96), Image.LANCZOS)
    files = {
        "chelsea-lossy-q80": cwebp(png(chelsea), "-q", "80"),
        "chelsea-lossless": cwebp(png(chelsea), "-lossless"),
        "coffee-lossy-alpha": cwebp(png(with_alpha(coffee, 1)), "-q", "70", "-exact"),
        "coffee-lossless-alpha": cwebp(png(with_alpha(coffee, 2)), "-lossless", "-exact"),
        "coffee-lossy-alpha-cleaned": cwebp(png(with_alpha(coffee, 3)), "-q", "60"),
        "astronaut-near-lossless": cwebp(png(astronaut), "-near_lossless", "40"),
        "astronaut-lossy-q30-odd": cwebp(png(astronaut.crop((0, 0, 91, 77))), "-q", "30"),
    }
    files["chelsea-lossy-exif6"] = with_exif(files["chelsea-lossy-q80"], 6)
    files["chelsea-lossless-exif8"] = with_exif(files["chelsea-lossless"], 8)
    files["chelsea-lossy-exif3-unflagged"] = with_exif(files["chelsea-lossy-q80"], 3, flag=False)
    files["anim-lossy-alpha-offset"] = animated((160, 120), [(10, 20, files["coffee-lossy-alpha"]), (0, 0, files["chelsea-lossy-q80"])])
    files["anim-lossless-offset"] = animated((130, 110), [(4, 6, files["coffee-lossless-alpha"]), (0, 0, files["coffee-lossy-alpha"])])
    files["anim-lossy-full"] = animated((150, 100), [(0, 0, files["chelsea-lossy-q80"]), (10, 10, files["coffee-lossy-alpha"])])
    big = Image.new("RGB", (4032, 3024), (90, 140, 200))
    files["big-4032x3024-lossy"] = cwebp(png(big), "-q", "50")
    mid = Image.new("RGB", (1200, 900), (200, 120, 40))
    files["mid-1200x900-lossless"] = cwebp(png(mid), "-lossless")

    manifest = {}
    for name, data in files.items():
        (WEBP_OUT / f"{name}.webp").write_bytes(data)
        entry = answer(data)
        # The first frame's bitstream: the first VP8/VP8L chunk header, nested in ANMF or not.
        lossy_at, lossless_at = data.find(b"VP8 ", 12), data.find(b"VP8L", 12)
        entry["lossless"] = lossless_at != -1 and (lossy_at == -1 or lossless_at < lossy_at)
        if "sha256" in entry and not entry["lossless"] and entry["width"] * entry["height"] <= 160 * 120:
            rgb = pillow_decode.decode(io.BytesIO(data), True)
            (WEBP_OUT / f"{name}.rgb").write_bytes(rgb.tobytes())
            entry["rgb"] = f"{name}.rgb"
        manifest[f"{name}.webp"] = entry
    write_json(WEBP_OUT / "manifest.json", {"pillow": PIL.__version__, "cwebp": "libwebp " + subprocess.run(
        ["cwebp", "-version"], capture_output=True, text=True).stdout.strip(), "files": manifest})
    print(f"webp: {len(corpus)} corpus answers, {len(manifest)} made files")


if __name__ == "__main__":
    main()
