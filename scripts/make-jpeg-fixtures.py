#!/usr/bin/env python3
"""Small JPEGs of every layout our decoder (src/image/jpeg/) must get bit-exact, and Pillow's answers.

Writes test/fixtures/jpeg/*.jpg, golden.json (Pillow's RGB decode of each: sha256 or the error)
and pillow-tests.json (the same for ../shared/data/pillow-tests/*.jpg|*.mpo). Deterministic.

    apt-get install -y python3-pil libjpeg-turbo-progs
    /usr/bin/python3 scripts/make-jpeg-fixtures.py

Sources: the photos in ../shared/data/photos (CC0 / public domain, see LICENSE.md there) and
synthetic patterns (hard edges, saturated colours: they drive the IDCT past 0..255).
"""

import glob
import io
import json
import os
import subprocess
import sys

from PIL import Image, ImageDraw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "fixtures", "jpeg")
PHOTOS = os.path.join(ROOT, "..", "shared", "data", "photos")
PILLOW_TESTS = os.path.join(ROOT, "..", "shared", "data", "pillow-tests")


def photo(name, size):
    im = Image.open(os.path.join(PHOTOS, name)).convert("RGB")
    return im.resize(size, Image.BILINEAR)


def pattern(w, h):
    """Saturated colour blocks, a checkerboard and thin lines: worst cases for ringing."""
    im = Image.new("RGB", (w, h), (0, 0, 0))
    d = ImageDraw.Draw(im)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255), (255, 255, 255)]
    for i, c in enumerate(colours):
        d.rectangle([i * w // 7, 0, (i + 1) * w // 7 - 1, h // 3], fill=c)
    for y in range(h // 3, 2 * h // 3, 3):
        for x in range(0, w, 3):
            if (x // 3 + y // 3) % 2:
                d.rectangle([x, y, x + 2, y + 2], fill=(255, 0, 0) if x % 2 else (0, 0, 255))
    for x in range(0, w, 4):
        d.line([x, 2 * h // 3, x, h], fill=(255, 255, 255) if x % 8 else (255, 0, 128))
    return im


def save(im, name, **kw):
    im.save(os.path.join(OUT, name), "JPEG", **kw)


def cjpeg(im, name, *args):
    buf = io.BytesIO()
    im.save(buf, "PPM" if im.mode == "RGB" else "PPM")
    data = subprocess.run(["cjpeg", *args], input=buf.getvalue(), capture_output=True, check=True).stdout
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    return data


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in glob.glob(os.path.join(OUT, "*.jpg")):
        os.remove(f)
    cat = photo("chelsea.png", (160, 120))
    coffee = photo("coffee.png", (97, 61))
    astro = photo("astronaut.png", (128, 128))
    pat = pattern(96, 72)

    # Pillow: the three usual subsamplings, baseline and progressive (successive approximation).
    for sub, tag in ((0, "444"), (1, "422"), (2, "420")):
        save(cat, f"cat-{tag}.jpg", quality=90, subsampling=sub)
        save(cat, f"cat-{tag}-prog.jpg", quality=85, subsampling=sub, progressive=True)
        save(pat, f"pattern-{tag}-q30.jpg", quality=30, subsampling=sub)
        save(pat, f"pattern-{tag}-q95.jpg", quality=95, subsampling=sub)
    save(coffee, "coffee-97x61-420.jpg", quality=75, subsampling=2)
    save(coffee, "coffee-97x61-420-prog.jpg", quality=75, subsampling=2, progressive=True)
    # Odd sizes, none a multiple of the MCU.
    for w, h in ((1, 1), (3, 5), (17, 33), (2, 9), (33, 2)):
        small = astro.resize((w, h), Image.BILINEAR)
        save(small, f"astro-{w}x{h}-420.jpg", quality=90, subsampling=2)
        save(small, f"astro-{w}x{h}-422-prog.jpg", quality=90, subsampling=1, progressive=True)
    # Grayscale, CMYK (Pillow writes Adobe, inverted), 16-bit quantization tables (so SOF1).
    save(cat.convert("L"), "cat-gray.jpg", quality=85)
    save(cat.convert("L"), "cat-gray-prog.jpg", quality=85, progressive=True)
    save(cat.convert("CMYK"), "cat-cmyk.jpg", quality=85)
    save(pat.convert("CMYK"), "pattern-cmyk-prog.jpg", quality=60, progressive=True)
    save(cat, "cat-16bit-qtables.jpg", qtables=[[300 + i for i in range(64)], [2] * 64], subsampling=2)
    save(pat, "pattern-q1-qtables.jpg", qtables=[[255] * 64, [255] * 64], subsampling=0)
    # YCCK: a 4-component file whose Adobe transform says 2 (what Photoshop writes); the
    # decoder must run jdcolor.c's YCCK->CMYK step before Pillow's CMYK handling.
    buf = io.BytesIO()
    cat.convert("CMYK").save(buf, "JPEG", quality=85)
    data = bytearray(buf.getvalue())
    i = data.find(b"Adobe")
    assert i > 0
    data[i + 11] = 2
    with open(os.path.join(OUT, "cat-ycck.jpg"), "wb") as f:
        f.write(bytes(data))
    # A CMYK file without the Adobe segment (Pillow still reads it as inverted).
    j = data.find(b"\xff\xee")
    seg_len = (data[j + 2] << 8) | data[j + 3]
    with open(os.path.join(OUT, "cat-cmyk-no-adobe.jpg"), "wb") as f:
        f.write(bytes(data[:j] + data[j + 2 + seg_len:]).replace(b"Adobe", b"Adobe"))

    # cjpeg for what Pillow cannot write: 4:4:0, 4:1:1, restart intervals, RGB, scan scripts.
    cjpeg(cat, "cat-440.jpg", "-quality", "88", "-sample", "1x2")
    cjpeg(coffee, "coffee-440-prog.jpg", "-quality", "88", "-sample", "1x2", "-progressive")
    cjpeg(cat, "cat-411.jpg", "-quality", "88", "-sample", "4x1")
    cjpeg(coffee, "coffee-411.jpg", "-quality", "88", "-sample", "4x1")
    cjpeg(cat, "cat-restart1.jpg", "-quality", "80", "-restart", "1B")
    cjpeg(coffee, "coffee-restart3-420.jpg", "-quality", "80", "-restart", "3B", "-sample", "2x2")
    cjpeg(cat, "cat-restart2-prog.jpg", "-quality", "80", "-restart", "2B", "-progressive")
    cjpeg(cat, "cat-rgb.jpg", "-quality", "90", "-rgb")
    cjpeg(pat, "pattern-rgb-prog.jpg", "-quality", "50", "-rgb", "-progressive")
    cjpeg(cat, "cat-arith.jpg", "-quality", "90", "-arithmetic")
    cjpeg(cat, "cat-h2v1-luma-411.jpg", "-quality", "85", "-sample", "2x1,1x1,1x1")
    cjpeg(pat, "pattern-h4v2.jpg", "-quality", "60", "-sample", "4x2,1x1,1x1")
    cjpeg(coffee, "coffee-h1v4.jpg", "-quality", "70", "-sample", "1x4,1x1,1x1")
    cjpeg(cat, "cat-mixed-2x2-1x2.jpg", "-quality", "85", "-sample", "2x2,1x2,2x1")
    # Sequential, one scan per component (non-interleaved), and a hand-made progression.
    scans = os.path.join(OUT, "..", "scans.tmp")
    with open(scans, "w") as f:
        f.write("0;\n1;\n2;\n")
    cjpeg(cat, "cat-noninterleaved.jpg", "-quality", "85", "-scans", scans)
    with open(scans, "w") as f:
        f.write("0,1,2: 0-0, 0, 1;\n0: 1-5, 0, 2;\n2: 1-63, 0, 1;\n1: 1-63, 0, 1;\n0: 6-63, 0, 2;\n0: 1-63, 2, 1;\n0,1,2: 0-0, 1, 0;\n2: 1-63, 1, 0;\n1: 1-63, 1, 0;\n0: 1-63, 1, 0;\n")
    cjpeg(coffee, "coffee-custom-prog.jpg", "-quality", "85", "-scans", scans, "-restart", "5B")
    os.remove(scans)

    # A 12 MP progressive file (smooth, so it stays small) for the memory bound at reduced scale.
    big = astro.resize((4032, 3024), Image.BICUBIC)
    save(big, "big-4032x3024-prog.jpg", quality=30, subsampling=2, progressive=True)

    files = sorted(glob.glob(os.path.join(OUT, "*.jpg")))
    write_golden(files, os.path.join(OUT, "golden.json"))
    tests = sorted(glob.glob(os.path.join(PILLOW_TESTS, "*.jpg")) + glob.glob(os.path.join(PILLOW_TESTS, "*.mpo")))
    write_golden(tests, os.path.join(OUT, "pillow-tests.json"))
    total = sum(os.path.getsize(f) for f in files)
    print(f"{len(files)} fixtures, {total} bytes", file=sys.stderr)


def write_golden(files, path):
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "pillow-decode.py"), "--no-transpose", *files],
        capture_output=True, check=True, text=True,
    ).stdout
    entries = [json.loads(line) for line in out.splitlines() if line.strip()]
    with open(path, "w") as f:
        json.dump(entries, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
