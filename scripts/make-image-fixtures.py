#!/usr/bin/env python3
"""Makes the fixtures of test/node/image.test.ts in test/fixtures/images/.

Every fixture comes with the pixels a reference decoder gives for it (`<name>.rgb`, raw RGB
interleaved, EXIF orientation applied), listed in manifest.json. The reference is what our
preprocessing is modelled on: PIL's `ImageOps.exif_transpose(Image.open(f)).convert('RGB')`.
The one place we knowingly differ from PIL is 16-bit grayscale PNG, where PIL clips values to
255 (a nearly white image) and we take the high byte as it does for every other 16-bit PNG;
that fixture's reference is computed here, and checked against PIL for all the other PNGs.

PNGs are written by the small encoder below rather than by PIL, because PIL cannot write
Adam7 interlacing, 16-bit RGB(A), 1/2/4-bit grayscale or eXIf chunks, and because it lets us
use all five scanline filters. JPEGs come from PIL (libjpeg-turbo) and, for the variants PIL
cannot make (RGB colour space with an Adobe marker, restart intervals), from cjpeg.

Deterministic: same inputs, same bytes. Needs Debian's python3-pil and libjpeg-turbo-progs:
    apt-get install -y python3-pil libjpeg-turbo-progs
    /usr/bin/python3 scripts/make-image-fixtures.py
Source photos: $PHOTOS_DIR, default ../shared/data/photos beside the repository (see LICENSE.md).
"""

import json
import os
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import PIL
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test" / "fixtures" / "images"
PHOTOS = Path(os.environ.get("PHOTOS_DIR", ROOT.parent / "shared" / "data" / "photos"))

manifest = {
    "generator": "scripts/make-image-fixtures.py",
    "pillow": PIL.__version__,
    "fixtures": {},
}


class Lcg:
    """A fixed PRNG, so that noise does not depend on Python's `random` implementation."""

    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFF

    def byte(self):
        self.state = (1664525 * self.state + 1013904223) & 0xFFFFFFFF
        return self.state >> 24


def rgb_bytes(im):
    return im.convert("RGB").tobytes()


def pillow_reference(path):
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def record(name, fmt, stored_size, orientation, ref_size, ref_pixels, note, step=1):
    """`step` > 1 keeps only every step-th pixel of every step-th row of the reference, to keep
    the reference of a full-size photo small."""
    assert len(ref_pixels) == ref_size[0] * ref_size[1] * 3
    if step > 1:
        w, h = ref_size
        ref_pixels = b"".join(ref_pixels[(y * w + x) * 3:(y * w + x) * 3 + 3]
                              for y in range(0, h, step) for x in range(0, w, step))
    (OUT / f"{name}.rgb").write_bytes(ref_pixels)
    manifest["fixtures"][name] = {
        "file": f"{name}.{'jpg' if fmt == 'jpeg' else 'png'}",
        "format": fmt,
        "width": stored_size[0],
        "height": stored_size[1],
        "orientation": orientation,
        "ref": f"{name}.rgb",
        "refWidth": ref_size[0],
        "refHeight": ref_size[1],
        "note": note,
        "refStep": step,
    }


def record_jpeg(name, note, orientation=1, step=1):
    path = OUT / f"{name}.jpg"
    with Image.open(path) as im:
        stored = im.size
    ref = pillow_reference(path)
    record(name, "jpeg", stored, orientation, ref.size, ref.tobytes(), note, step)


# ---------------------------------------------------------------------------------------------
# Source images

def photo_rgb(size):
    """chelsea.png (451x300) cropped to 3:2 and shrunk: real photographic content."""
    with Image.open(PHOTOS / "chelsea.png") as im:
        return im.convert("RGB").crop((0, 0, 450, 300)).resize(size, Image.Resampling.LANCZOS)


def photo_gray(size):
    with Image.open(PHOTOS / "camera.png") as im:
        return im.convert("L").resize(size, Image.Resampling.LANCZOS)


def orientation_target():
    """32x16, eight 8x8 blocks of distinct flat colours: every one of the eight EXIF
    transforms gives a different picture, and flat 8x8 blocks survive JPEG almost exactly."""
    colours = [
        (220, 30, 30), (30, 200, 40), (40, 60, 220), (235, 225, 40),
        (210, 40, 200), (40, 210, 210), (245, 245, 245), (25, 25, 25),
    ]
    im = Image.new("RGB", (32, 16))
    for i, c in enumerate(colours):
        x, y = (i % 4) * 8, (i // 4) * 8
        im.paste(c, (x, y, x + 8, y + 8))
    return im


# ---------------------------------------------------------------------------------------------
# EXIF (a TIFF structure: header, IFD0 with a Make string before Orientation, so a reader
# must walk the entries and follow an offset-sized value without tripping on it)

def exif_tiff(orientation, big_endian):
    e = ">" if big_endian else "<"
    make = b"edge-resnet fixture\0"
    n = 2
    data_offset = 8 + 2 + 12 * n + 4
    out = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    out += struct.pack(e + "H", n)
    out += struct.pack(e + "HHII", 0x010F, 2, len(make), data_offset)
    out += struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "H", orientation) + b"\0\0"
    out += struct.pack(e + "I", 0)
    return out + make


# What the stored pixels must be so that applying EXIF orientation o gives the target back:
# the inverse of PIL's exif_transpose operation for o.
STORE_FOR_ORIENTATION = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


# ---------------------------------------------------------------------------------------------
# A small PNG encoder: any colour type and bit depth, all five filters, optional Adam7.

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pack_row(samples, depth):
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    if depth == 8:
        return bytes(samples)
    out, acc, nbits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(ftype, raw, prev, bpp):
    out = bytearray([ftype])
    for i, x in enumerate(raw):
        a = raw[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][ftype]
        out.append((x - pred) & 0xFF)
    return bytes(out)


def encode_scanlines(pixels, width, height, channels, depth, first_filter):
    """pixels[y][x] is a tuple of samples; filters rotate through 0..4 row by row."""
    bpp = max(1, channels * depth // 8)
    out, prev = bytearray(), None
    for y in range(height):
        raw = pack_row([s for x in range(width) for s in pixels[y][x]], depth)
        if prev is None:
            prev = bytes(len(raw))
        out += filter_row((first_filter + y) % 5, raw, prev, bpp)
        prev = raw
    return bytes(out)


def write_png(path, pixels, width, height, depth, color_type, interlace=False,
              plte=None, trns=None, exif=None):
    channels = CHANNELS[color_type]
    if interlace:
        data = b""
        for p, (x0, y0, dx, dy) in enumerate(ADAM7):
            sub = [[pixels[y][x] for x in range(x0, width, dx)] for y in range(y0, height, dy)]
            if sub and sub[0]:
                data += encode_scanlines(sub, len(sub[0]), len(sub), channels, depth, p)
    else:
        data = encode_scanlines(pixels, width, height, channels, depth, 0)
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, int(interlace)))
    if exif is not None:
        out += chunk(b"eXIf", exif)
    if plte is not None:
        out += chunk(b"PLTE", b"".join(bytes(c) for c in plte))
    if trns is not None:
        out += chunk(b"tRNS", bytes(trns))
    half = len(data) // 2  # two IDATs: readers must concatenate them
    compressed = zlib.compress(data, 9)
    out += chunk(b"IDAT", compressed[:half]) + chunk(b"IDAT", compressed[half:])
    out += chunk(b"IEND", b"")
    path.write_bytes(out)


def grid(im):
    w, h = im.size
    flat = list(im.getdata())
    return [[flat[y * w + x] if isinstance(flat[0], tuple) else (flat[y * w + x],) for x in range(w)]
            for y in range(h)]


def png_fixture(name, pixels, width, height, depth, color_type, expected, note, pil_agrees=True,
                orientation=1, **kw):
    """`expected` is our own derivation of the RGB pixels (before orientation); it must equal
    PIL's decode unless `pil_agrees` is False (documented per fixture)."""
    path = OUT / f"{name}.png"
    write_png(path, pixels, width, height, depth, color_type, **kw)
    ref = pillow_reference(path)
    exp_img = Image.frombytes("RGB", (width, height), bytes(expected))
    op = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
          6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}.get(orientation)
    if op is not None:
        exp_img = exp_img.transpose(op)
    if pil_agrees:
        assert ref.tobytes() == exp_img.tobytes(), f"{name}: our derivation differs from PIL"
    else:
        assert ref.tobytes() != exp_img.tobytes(), f"{name}: PIL now agrees; drop the exception"
    record(name, "png", (width, height), orientation, exp_img.size, exp_img.tobytes(), note)


def make_pngs():
    w, h = 37, 23  # odd sizes: partial bytes at row ends, partial Adam7 passes
    rgb = photo_rgb((w, h))
    gray = photo_gray((w, h))
    rgb_px = grid(rgb)
    gray_px = grid(gray)
    rgb_flat = rgb.tobytes()
    gray_rgb = bytes(v for g in gray.tobytes() for v in (g, g, g))
    noise = Lcg(7)
    alpha = [[((x * 7 + y * 11) % 256,) for x in range(w)] for y in range(h)]

    def wide(px):  # 8-bit samples -> 16-bit whose high byte is the 8-bit value
        return [[tuple((s << 8) | noise.byte() for s in p) for p in row] for row in px]

    rgba_px = [[rgb_px[y][x] + alpha[y][x] for x in range(w)] for y in range(h)]
    graya_px = [[gray_px[y][x] + alpha[y][x] for x in range(w)] for y in range(h)]

    png_fixture("png-rgb8", rgb_px, w, h, 8, 2, rgb_flat, "RGB 8-bit")
    png_fixture("png-rgba8", rgba_px, w, h, 8, 6, rgb_flat, "RGBA 8-bit, alpha dropped")
    png_fixture("png-rgb16", wide(rgb_px), w, h, 16, 2, rgb_flat, "RGB 16-bit, high byte")
    png_fixture("png-rgba16", wide(rgba_px), w, h, 16, 6, rgb_flat, "RGBA 16-bit")
    png_fixture("png-gray8", gray_px, w, h, 8, 0, gray_rgb, "grayscale 8-bit")
    gray16 = wide(gray_px)
    png_fixture("png-gray16", gray16, w, h, 16, 0, bytes(min(p[0], 255) for row in gray16 for p in row for _ in range(3)),
                "grayscale 16-bit: PIL opens it as mode I and convert('RGB') clips to 255; we follow PIL")
    png_fixture("png-graya8", graya_px, w, h, 8, 4, gray_rgb, "gray+alpha 8-bit")
    png_fixture("png-graya16", wide(graya_px), w, h, 16, 4, gray_rgb, "gray+alpha 16-bit")
    for depth in (1, 2, 4):
        low = [[(p[0] >> (8 - depth),) for p in row] for row in gray_px]
        scale = 255 // ((1 << depth) - 1)
        exp = bytes(v for row in low for p in row for v in (p[0] * scale,) * 3)
        png_fixture(f"png-gray{depth}", low, w, h, depth, 0, exp, f"grayscale {depth}-bit")
    for depth in (8, 4, 2, 1):
        pal_img = rgb.quantize(colors=1 << depth, method=Image.Quantize.MEDIANCUT)
        pal = pal_img.getpalette()[: 3 * (1 << depth)]
        used = max(pal_img.getdata()) + 1
        plte = [tuple(pal[3 * i: 3 * i + 3]) for i in range(used)]
        idx = grid(pal_img)
        exp = bytes(v for row in idx for p in row for v in plte[p[0]])
        trns = [(i * 37) % 256 for i in range(used // 2)] if depth == 8 else None
        png_fixture(f"png-palette{depth}", idx, w, h, depth, 3, exp,
                    f"palette {depth}-bit, {used} colours" + (", tRNS dropped" if trns else ""),
                    plte=plte, trns=trns)
        if depth == 4:
            png_fixture("png-palette4-adam7", idx, w, h, depth, 3, exp, "palette 4-bit, Adam7",
                        plte=plte, interlace=True)
    png_fixture("png-rgb8-adam7", rgb_px, w, h, 8, 2, rgb_flat, "RGB 8-bit, Adam7", interlace=True)
    png_fixture("png-rgba16-adam7", wide(rgba_px), w, h, 16, 6, rgb_flat, "RGBA 16-bit, Adam7",
                interlace=True)
    low2 = [[(p[0] >> 6,) for p in row] for row in gray_px]
    exp2 = bytes(v for row in low2 for p in row for v in (p[0] * 85,) * 3)
    png_fixture("png-gray2-adam7", low2, w, h, 2, 0, exp2, "grayscale 2-bit, Adam7", interlace=True)
    png_fixture("png-rgb8-exif6", rgb_px, w, h, 8, 2, rgb_flat, "RGB 8-bit, eXIf orientation 6",
                orientation=6, exif=exif_tiff(6, big_endian=True))


# ---------------------------------------------------------------------------------------------

def cjpeg(name, src, *args):
    with tempfile.TemporaryDirectory() as tmp:
        src_path = Path(tmp) / ("in.pgm" if src.mode == "L" else "in.ppm")
        src.save(src_path)
        subprocess.run(["cjpeg", *args, "-outfile", str(OUT / f"{name}.jpg"), str(src_path)], check=True)


def make_jpegs():
    # A real camera-style file, as users upload them: copied byte for byte.
    (OUT / "chelsea.jpg").write_bytes((PHOTOS / "chelsea.jpg").read_bytes())
    record_jpeg("chelsea", "shared photo chelsea.jpg as is (451x300, baseline 4:2:0)", step=5)
    photo = photo_rgb((96, 64))
    photo.save(OUT / "jpeg-baseline-444.jpg", quality=90, subsampling=0)
    record_jpeg("jpeg-baseline-444", "baseline, YCbCr 4:4:4")
    photo.save(OUT / "jpeg-baseline-420.jpg", quality=90, subsampling=2)
    record_jpeg("jpeg-baseline-420", "baseline, YCbCr 4:2:0")
    photo.save(OUT / "jpeg-progressive.jpg", quality=90, subsampling=2, progressive=True)
    record_jpeg("jpeg-progressive", "progressive, YCbCr 4:2:0")
    photo.convert("L").save(OUT / "jpeg-gray.jpg", quality=90)
    record_jpeg("jpeg-gray", "baseline, 1 component")
    photo.convert("CMYK").save(OUT / "jpeg-cmyk.jpg", quality=90)
    record_jpeg("jpeg-cmyk", "Adobe CMYK (transform 0, inverted, as Photoshop writes it)")
    cjpeg("jpeg-rgb-adobe", photo, "-quality", "90", "-rgb")
    record_jpeg("jpeg-rgb-adobe", "3 components stored as RGB, Adobe transform 0")
    cjpeg("jpeg-restart-420", photo, "-quality", "90", "-restart", "5B")
    record_jpeg("jpeg-restart-420", "YCbCr 4:2:0, restart every 5 MCUs (24 MCUs)")
    cjpeg("jpeg-gray-restart", photo.convert("L"), "-quality", "90", "-grayscale", "-restart", "7B")
    record_jpeg("jpeg-gray-restart", "1 component, restart every 7 blocks (96 blocks)")

    target = orientation_target()
    for o, op in STORE_FOR_ORIENTATION.items():
        stored = target if op is None else target.transpose(op)
        name = f"jpeg-orient-{o}"
        tiff = exif_tiff(o, big_endian=o % 2 == 0)
        stored.save(OUT / f"{name}.jpg", quality=95, subsampling=0, exif=b"Exif\0\0" + tiff)
        ref = pillow_reference(OUT / f"{name}.jpg")
        assert ref.size == target.size
        worst = max(abs(a - b) for a, b in zip(ref.tobytes(), target.tobytes()))
        assert worst <= 8, f"{name}: PIL's upright decode is {worst} off the target"
        record_jpeg(name, f"EXIF orientation {o} ({'MM' if o % 2 == 0 else 'II'})", orientation=o)
    (OUT / "orient-target.rgb").write_bytes(target.tobytes())


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    make_jpegs()
    make_pngs()
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
