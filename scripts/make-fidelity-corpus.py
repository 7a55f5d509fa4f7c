#!/usr/bin/python3
"""The image corpus of the decoding-fidelity instrument (bench/fidelity.ts), built deterministically.

    /usr/bin/python3 scripts/make-fidelity-corpus.py              # -> bench/tmp/fidelity-corpus/ (gitignored)
    /usr/bin/python3 scripts/make-fidelity-corpus.py --fixtures   # -> test/fixtures/fidelity/ (committed, small)

Needs Debian's python3-pil (Pillow 9.4: libjpeg-turbo, libwebp). Sources, each used only if present:

- ../shared/data/photos: scikit-image sample photos (CC0 / public domain)
- ../shared/data/pillow-tests: Pillow's own test images (MIT-CMU), only the photographs and a few
  format oddities (CMYK, EXIF orientation, MPO, junk before the header, WebP, GIF)
- /usr/share/backgrounds/mate/nature: Debian's mate-backgrounds (GPL-2+), real camera JPEGs
  1280..2560 px with 4:2:0, 4:2:2 and progressive encodings
- /usr/share/backgrounds/*.jpg: Debian's lomiri-wallpapers-20.04 (CC-BY-SA-3.0), 4096..6028 px photos
  (`apt-get install -y mate-backgrounds lomiri-wallpapers-20.04`)

The corpus holds (1) the originals as they are (under 16 MP), and (2) re-encodings of a few scenes
(upright, centre-cropped to 4:3, resized with Lanczos) at sizes that land on every decode scale of
src/image (shorter side 300: full; 600 and 512: 1/2; 1200 and 1024: 1/4; 3024 and 2048: 1/8; the
512/1024/2048 ones are the boundaries where the reduced decode's shorter side is exactly 256), at
qualities 75..95 with 4:4:4, 4:2:2 and 4:2:0 subsampling, progressive, with EXIF orientation 6,
and as PNG, WebP lossy and lossless, and GIF. index.json describes every file; LICENSES.md lists
each source's license. Same inputs, same Pillow -> same bytes.

--fixtures makes the committed test set of test/node/fidelity.test.ts from CC0 / public-domain
sources only (test/fixtures/photos): a few small re-encodings that reach every reduced JPEG scale,
and for every test image (those and test/fixtures/photos/*) the golden reference crop, Pillow's
full decode + exif_transpose + convert('RGB') -> torchvision Resize(256) (BILINEAR) + CenterCrop(224),
as golden/<name>.u8 (224 x 224 x 3, HWC RGB).
"""

import argparse
import hashlib
import importlib.util
import io
import json
import os
import shutil
import sys
import warnings

import PIL
from PIL import Image, ImageOps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
Image.MAX_IMAGE_PIXELS = None
warnings.simplefilter("ignore")

_spec = importlib.util.spec_from_file_location("golden", os.path.join(ROOT, "scripts", "make-preprocess-golden.py"))
golden_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden_mod)
IMAGENET = golden_mod.IMAGENET

SOURCES = {
    "skimage": {
        "dir": os.path.join(SHARED, "photos"),
        "what": "scikit-image sample data (astronaut: NASA; rocket: SpaceX; chelsea, coffee, camera: Stefan van der Walt, Rachel Michetti, Lav Varshney)",
        "license": "CC0 / public domain (see ../shared/data/photos/LICENSE.md)",
        "files": ["astronaut.jpg", "astronaut.png", "camera.png", "chelsea.jpg", "chelsea.png", "coffee.jpg", "coffee.png", "rocket.jpg"],
    },
    "pillow": {
        "dir": os.path.join(SHARED, "pillow-tests"),
        "what": "Pillow's test images (Tests/images of the Pillow project)",
        "license": "MIT-CMU (Pillow's license, ../shared/data/pillow-tests/LICENSE-Pillow): Copyright 1997-2011 Secret Labs AB, 1995-2011 Fredrik Lundh and contributors, 2010 Jeffrey A. Clark and contributors",
        "files": [
            "flower.jpg", "flower2.jpg", "hopper.jpg", "sugarshack_bad_mpo_header.jpg", "iptc.jpg", "exif_typeerror.jpg",
            "exif-72dpi-int.jpg", "app13-multiple.jpg", "frozenpond.mpo", "junk_jpeg_header.jpg", "pil_sample_cmyk.jpg",
            "hopper_orientation_6.jpg", "hopper_gray.jpg", "flower.webp", "flower2.webp", "hopper.webp", "hopper.gif",
        ],
    },
    "mate": {
        "dir": "/usr/share/backgrounds/mate/nature",
        "what": "Debian package mate-backgrounds 1.26 (nature/: photos by Charles Barbin, Lennart Poettering and Andrea Cimitan, Marco Cogoni and Hylke Bons, Jens Ansorg, Timothy Schellhase and Lapo Calamandrei, blackcombwhistler07, Sergey Nazarov, Jean-Francois Fortin Tam)",
        "license": "GPL-2+ (/usr/share/doc/mate-backgrounds/copyright)",
        "files": ["Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg", "LadyBird.jpg",
                  "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg"],
    },
    "lomiri": {
        "dir": "/usr/share/backgrounds",
        "what": "Debian package lomiri-wallpapers-20.04 (photos by Jasper Roks, Aury88, Lukas Baubkus, HEROBRINE7GAMER)",
        "license": "CC-BY-SA-3.0 (/usr/share/doc/lomiri-wallpapers-20.04/copyright)",
        "files": ["Fossa_by_Jasper_Roks.jpg", "Infinite-Sea_by_Aury88.jpg", "Kleiber_by_Lukas_Baubkus.jpg", "Painting-Colors_by__herobrine7gamer.jpg"],
    },
}

# Scenes that are re-encoded: (source, file), large real photos first; the skimage ones are the
# fallback when the Debian packages are not installed (upscaled: smoother than a real photo).
SCENES = [
    ("lomiri", "Kleiber_by_Lukas_Baubkus.jpg"),
    ("lomiri", "Fossa_by_Jasper_Roks.jpg"),
    ("mate", "LadyBird.jpg"),
    ("mate", "Storm.jpg"),
    ("mate", "Wood.jpg"),
    ("skimage", "astronaut.png"),
    ("skimage", "coffee.png"),
    ("pillow", "exif_typeerror.jpg"),
]

MAX_ORIGINAL_PIXELS = 16_000_000  # the Worker's MAX_PIXELS; bigger originals are only re-encoded


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def upright(path):
    with Image.open(path) as im:
        im.seek(0)
        im.load()
        return ImageOps.exif_transpose(im).convert("RGB")


def fit(img, width, height):
    """Centre crop to width:height, then Lanczos to exactly width x height."""
    w, h = img.size
    if w * height > h * width:
        cw, ch = round(h * width / height), h
    else:
        cw, ch = w, round(w * height / width)
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.crop((left, top, left + cw, top + ch)).resize((width, height), Image.LANCZOS)


SUBSAMPLING = {"444": 0, "422": 1, "420": 2}


def encode(img, kind, **o):
    """Bytes of `img` in one of the corpus encodings."""
    buf = io.BytesIO()
    if kind == "jpeg":
        extra = {}
        if o.get("orientation"):
            exif = Image.Exif()
            exif[0x0112] = o["orientation"]
            extra["exif"] = exif.tobytes()
        img.save(buf, "JPEG", quality=o["q"], subsampling=SUBSAMPLING[o["sub"]], progressive=o.get("progressive", False),
                 optimize=False, **extra)
    elif kind == "png":
        img.save(buf, "PNG", compress_level=6)
    elif kind == "webp":
        img.save(buf, "WEBP", quality=o.get("q", 80), lossless=o.get("lossless", False), method=4)
    elif kind == "gif":
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(buf, "GIF")
    else:
        raise ValueError(kind)
    return buf.getvalue()


# Re-encodings of every scene: (tag, width, height, kind, options). 4:3 landscape throughout.
LADDER = [
    ("400x300-q90-420", 400, 300, "jpeg", {"q": 90, "sub": "420"}),
    ("800x600-q90-420", 800, 600, "jpeg", {"q": 90, "sub": "420"}),
    ("683x512-q95-444", 683, 512, "jpeg", {"q": 95, "sub": "444"}),
    ("1600x1200-q75-420", 1600, 1200, "jpeg", {"q": 75, "sub": "420"}),
    ("1600x1200-q90-422", 1600, 1200, "jpeg", {"q": 90, "sub": "422"}),
    ("1600x1200-q95-444", 1600, 1200, "jpeg", {"q": 95, "sub": "444"}),
    ("1365x1024-q85-420", 1365, 1024, "jpeg", {"q": 85, "sub": "420"}),
    ("1200x1600-q90-420-exif6", 1600, 1200, "jpeg", {"q": 90, "sub": "420", "orientation": 6}),
    ("2731x2048-q90-420", 2731, 2048, "jpeg", {"q": 90, "sub": "420"}),
    ("4032x3024-q90-420", 4032, 3024, "jpeg", {"q": 90, "sub": "420"}),
    ("4032x3024-q85-422", 4032, 3024, "jpeg", {"q": 85, "sub": "422"}),
    ("1600x1200-q90-420-progressive", 1600, 1200, "jpeg", {"q": 90, "sub": "420", "progressive": True}),
    ("800x600-png", 800, 600, "png", {}),
    ("1600x1200-png", 1600, 1200, "png", {}),
    ("800x600-webp-q80", 800, 600, "webp", {"q": 80}),
    ("1600x1200-webp-q90", 1600, 1200, "webp", {"q": 90}),
    ("800x600-webp-lossless", 800, 600, "webp", {"lossless": True}),
    ("800x600-gif", 800, 600, "gif", {}),
]
# Only the first scenes get the 12 MP sizes (each is a 36 MB reference decode).
BIG_SCENES = 4
EXT = {"jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif"}


def slug(name):
    return os.path.splitext(name)[0].split("_by_")[0].lower().replace("_", "-")


def stored_for(img, orientation):
    """The stored pixels whose exif_transpose under `orientation` is `img` (only 6 is used)."""
    if orientation == 6:
        return img.transpose(Image.ROTATE_90)
    return img


def build_corpus(out):
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    used = {}
    entries = []

    def add(name, data, source, derived, **facts):
        assert name not in {e["file"] for e in entries}, name
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        entries.append({"file": name, "source": source, "derived": derived, "bytes": len(data), "sha256": sha256(data), **facts})

    for key, src in SOURCES.items():
        present = [f for f in src["files"] if os.path.exists(os.path.join(src["dir"], f))]
        if not present:
            print(f"skip {key}: {src['dir']} not found", file=sys.stderr)
            continue
        used[key] = present
        for f in present:
            path = os.path.join(src["dir"], f)
            with Image.open(path) as im:
                w, h = im.size
            if w * h > MAX_ORIGINAL_PIXELS:
                continue
            stem, ext = os.path.splitext(f)
            with open(path, "rb") as fh:
                add(f"orig-{key}-{slug(f)}-{ext[1:].lower()}{ext.lower()}", fh.read(), f"{key}/{f}", "original, unchanged")

    scenes = [(k, f) for k, f in SCENES if f in used.get(k, [])][:6]
    for i, (key, f) in enumerate(scenes):
        img = upright(os.path.join(SOURCES[key]["dir"], f))
        for tag, w, h, kind, o in LADDER:
            if w * h > 5_000_000 and i >= BIG_SCENES:
                continue
            pix = fit(img, w, h)
            data = encode(stored_for(pix, o.get("orientation")), kind, **o)
            up = " (upscaled)" if w > img.width or h > img.height else ""
            add(f"re-{slug(f)}-{tag}.{EXT[kind]}", data, f"{key}/{f}",
                f"upright, centre crop 4:3, Lanczos to {w}x{h}{up}, {kind} {json.dumps(o, sort_keys=True)}")

    with open(os.path.join(out, "index.json"), "w") as fh:
        json.dump({"generator": "scripts/make-fidelity-corpus.py", "pillow": PIL.__version__, "files": entries}, fh, indent=1)
    write_licenses(out, used, entries)
    total = sum(e["bytes"] for e in entries)
    print(f"{len(entries)} files, {total / 1e6:.1f} MB in {out}")


def write_licenses(out, used, entries):
    lines = ["# Licenses of the fidelity corpus", "",
             "Made by scripts/make-fidelity-corpus.py; every file is an original or a re-encoding of one of these",
             "sources (index.json names the source of each file). Not committed: regenerate with the script.", "",
             "| source | files used | what | license |", "| --- | --- | --- | --- |"]
    for key, files in used.items():
        src = SOURCES[key]
        n = sum(1 for e in entries if e["source"].startswith(key + "/"))
        where = os.path.relpath(src["dir"], ROOT) if src["dir"].startswith(os.path.dirname(ROOT)) else src["dir"]
        lines.append(f"| {key} (`{where}`) | {n} ({', '.join(files)}) | {src['what']} | {src['license']} |")
    lines += ["", "Re-encodings and resizes are derivative works under the same license as their source; for",
              "CC-BY-SA-3.0 sources the attribution above and the license apply to them as well."]
    with open(os.path.join(out, "LICENSES.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# Committed test fixtures.

PHOTOS = os.path.join(ROOT, "test", "fixtures", "photos")
FIXTURES = os.path.join(ROOT, "test", "fixtures", "fidelity")

# (name, source in test/fixtures/photos, width, height, options): every reduced scale, the
# boundary cases where the reduced shorter side is exactly 256, and each subsampling.
FIXTURE_ENCODINGS = [
    ("astronaut-1024-q90-420.jpg", "astronaut.jpg", 1024, 1024, {"q": 90, "sub": "420"}),
    ("coffee-1536x1024-q92-444.jpg", "coffee.jpg", 1536, 1024, {"q": 92, "sub": "444"}),
    ("chelsea-771x512-q92-422.jpg", "chelsea.jpg", 771, 512, {"q": 92, "sub": "422"}),
    ("rocket-960x640-q90-420-exif6.jpg", "rocket.jpg", 960, 640, {"q": 90, "sub": "420", "orientation": 6}),
    ("rocket-3072x2048-q80-420.jpg", "rocket.jpg", 3072, 2048, {"q": 80, "sub": "420"}),
    ("coffee-900x600-q90-420-progressive.jpg", "coffee.jpg", 900, 600, {"q": 90, "sub": "420", "progressive": True}),
    # 1/4 at ratio 4. (1/8 needs a shorter side of 8 x 3 x 256 = 6144, a file too large to
    # commit: test/node/decode-plan.test.ts checks 1/8 at a smaller resize target instead.)
    ("astronaut-4096-q70-420.jpg", "astronaut.jpg", 4096, 4096, {"q": 70, "sub": "420"}),
    # Progressive at reduced scale (the decoder keeps only the coefficients the scale needs).
    ("coffee-2048x1365-q88-420-progressive.jpg", "coffee.jpg", 2048, 1365, {"q": 88, "sub": "420", "progressive": True}),
]


def build_fixtures():
    os.makedirs(os.path.join(FIXTURES, "golden"), exist_ok=True)
    cases = []
    for name, src, w, h, o in FIXTURE_ENCODINGS:
        pix = fit(upright(os.path.join(PHOTOS, src)), w, h)
        data = encode(stored_for(pix, o.get("orientation")), "jpeg", **o)
        assert len(data) < 1_000_000, (name, len(data))
        with open(os.path.join(FIXTURES, name), "wb") as fh:
            fh.write(data)
        cases.append({"file": f"fidelity/{name}", "from": f"photos/{src}",
                      "derived": f"upright, centre crop, Lanczos to {w}x{h} (upscaled), JPEG {json.dumps(o, sort_keys=True)}"})
    for f in sorted(os.listdir(PHOTOS)):
        if f.lower().endswith((".jpg", ".png")):
            cases.append({"file": f"photos/{f}", "from": f"photos/{f}", "derived": "as committed"})
    for c in cases:
        path = os.path.join(ROOT, "test", "fixtures", c["file"])
        with open(path, "rb") as fh:
            c["sha256"] = sha256(fh.read())
        img = upright(path)
        crop, resized, offset = golden_mod.golden(img, IMAGENET)
        gname = os.path.basename(c["file"]).replace(".", "-") + ".u8"
        with open(os.path.join(FIXTURES, "golden", gname), "wb") as fh:
            fh.write(crop)
        c.update({"width": img.width, "height": img.height, "golden": f"golden/{gname}", "goldenSha256": sha256(crop),
                  "resized": list(resized), "offset": list(offset)})
    with open(os.path.join(FIXTURES, "index.json"), "w") as fh:
        json.dump({"generator": "scripts/make-fidelity-corpus.py --fixtures", "pillow": PIL.__version__,
                   "layout": "golden/<name>.u8: 224 x 224 x 3 uint8 HWC RGB, Pillow full decode + exif_transpose + "
                             "convert('RGB'), Resize(256, BILINEAR) + CenterCrop(224) (torchvision geometry)",
                   "spec": IMAGENET, "cases": cases}, fh, indent=1)
    with open(os.path.join(FIXTURES, "LICENSE.md"), "w") as fh:
        fh.write("# Fidelity test fixtures\n\nMade by `/usr/bin/python3 scripts/make-fidelity-corpus.py --fixtures` from the photos in\n"
                 "test/fixtures/photos (scikit-image sample data: CC0 / public domain, see ../photos/LICENSE.md):\n"
                 "JPEG re-encodings (upscaled) and the golden reference crops of every case (index.json).\n")
    print(f"{len(cases)} cases in {FIXTURES}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "tmp", "fidelity-corpus"))
    ap.add_argument("--fixtures", action="store_true", help="write the committed test fixtures instead")
    args = ap.parse_args()
    if args.fixtures:
        build_fixtures()
    else:
        build_corpus(args.out)


if __name__ == "__main__":
    main()
