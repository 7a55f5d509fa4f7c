#!/usr/bin/python3
"""Golden outputs of the zoo's image preprocessing, computed by real Pillow.

Run with Debian's Python and Pillow (`apt-get install -y python3-pil`):

    /usr/bin/python3 scripts/make-preprocess-golden.py

For every case it writes test/fixtures/golden/<name>.u8: the cropHeight x cropWidth x 3 uint8
crop (HWC, RGB) that torchvision's Resize(resizeShorter) + CenterCrop((cropHeight, cropWidth))
produce on a PIL image, i.e. what the model zoo's imagenet_preprocess.py feeds into ToTensor.
torchvision itself is not installed here, so its two pieces of geometry are restated below
(`resized_size`, `center_crop`); the pixels all come from Pillow's own resize.

Sources are either photos (decoded once by Pillow and dumped as <name>.src.rgb, so the tests
do not depend on a JPEG decoder) or a synthetic integer pattern that the TypeScript tests
regenerate bit for bit (see `pattern`), which keeps large and extreme sizes out of the repo.
The output is deterministic: same Pillow, same bytes. index.json records Pillow's version.
"""

import hashlib
import json
import os
import shutil
import sys

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "fixtures", "golden")
PHOTOS_OUT = os.path.join(ROOT, "test", "fixtures", "photos")
PHOTOS_IN = os.environ.get("PHOTOS_DIR", os.path.join(ROOT, "..", "shared", "data", "photos"))

IMAGENET = {"resizeShorter": 256, "cropHeight": 224, "cropWidth": 224}

M32 = 0xFFFFFFFF


def pattern(width, height, seed):
    """Synthetic RGB bytes; restated in test/node/preprocess.test.ts (`pattern`), keep in sync.

    R: a diagonal ramp that wraps (hard 255 -> 0 edges), G: a 3x5 checker of 0/255 (the
    filter's worst case), B: hash noise (every tap matters)."""
    buf = bytearray(width * height * 3)
    i = 0
    wd = max(width - 1, 1)
    hd = max(height - 1, 1)
    s = (seed * 2246822519) & M32
    for y in range(height):
        ry = (y * 128) // hd
        yh = (y * 668265263 + s) & M32
        for x in range(width):
            h = (x * 374761393 + yh) & M32
            h = ((h ^ (h >> 13)) * 1274126177) & M32
            h ^= h >> 16
            buf[i] = ((x * 255) // wd + ry) & 255
            buf[i + 1] = 255 if ((x // 3 + y // 5) & 1) else 0
            buf[i + 2] = h & 255
            i += 3
    return bytes(buf)


def resized_size(width, height, size):
    """torchvision.transforms.functional._compute_resized_output_size for an int size."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def center_crop(img, crop_h, crop_w):
    """torchvision.transforms.functional.center_crop on a PIL image (pads with 0 if needed)."""
    w, h = img.size
    if crop_w > w or crop_h > h:
        left = (crop_w - w) // 2 if crop_w > w else 0
        top = (crop_h - h) // 2 if crop_h > h else 0
        right = (crop_w - w + 1) // 2 if crop_w > w else 0
        bottom = (crop_h - h + 1) // 2 if crop_h > h else 0
        padded = Image.new(img.mode, (w + left + right, h + top + bottom), (0, 0, 0))
        padded.paste(img, (left, top))
        img = padded
        w, h = img.size
        if crop_w == w and crop_h == h:
            return img, (-left, -top)
    top = int(round((h - crop_h) / 2.0))
    left = int(round((w - crop_w) / 2.0))
    return img.crop((left, top, left + crop_w, top + crop_h)), (left, top)


def crop_offset(resized_w, resized_h, crop_h, crop_w):
    """Where the crop starts in resized coordinates (negative when torchvision pads)."""

    def axis(size, crop):
        if crop > size:
            return -((crop - size) // 2)
        return int(round((size - crop) / 2.0))

    return axis(resized_w, crop_w), axis(resized_h, crop_h)


PHOTOS = [
    # name, file; JPEGs keep the committed copies small. Pillow decodes them once here.
    ("chelsea", "chelsea.jpg"),
    ("coffee", "coffee.jpg"),
    ("rocket", "rocket.jpg"),
]

SYNTHETIC = [
    # name, width, height, seed, spec overrides, why
    ("upscale-100x150", 100, 150, 1, {}, "upscale: shorter side below 256, support stays 1"),
    ("tall-300x900", 300, 900, 2, {}, "portrait, long vertical axis"),
    ("odd-w257", 201, 200, 3, {}, "resized 257x256: crop left (257-224)/2 = 16.5 rounds half-even to 16"),
    ("odd-w261", 204, 200, 4, {}, "resized 261x256: 18.5 rounds half-even to 18, not 19"),
    ("odd-h259", 200, 203, 5, {}, "resized 256x259: crop top 17.5 rounds to 18"),
    ("identity-257x256", 257, 256, 6, {}, "no resampling at all (sizes already match)"),
    ("tiny-7x5", 7, 5, 7, {}, "tiny source, 51x upscale"),
    ("extreme-2000x40", 2000, 40, 8, {}, "1:50 aspect, resized 12800x256"),
    ("extreme-3x500", 3, 500, 9, {}, "tall sliver, resized 256x42666"),
    ("big-2000x1500", 2000, 1500, 10, {}, "5.9x downscale, 25-tap filter"),
    ("square-999", 999, 999, 11, {}, "square, 3.9x downscale"),
    ("spec-small", 640, 480, 12,
     {"resizeShorter": 160, "cropHeight": 112, "cropWidth": 128}, "non-ImageNet spec, non-square crop"),
    ("spec-pad", 330, 220, 13,
     {"resizeShorter": 200, "cropHeight": 224, "cropWidth": 224}, "crop taller than the resized image: zero padding"),
    ("spec-pad-both", 50, 40, 14,
     {"resizeShorter": 64, "cropHeight": 96, "cropWidth": 112}, "crop larger on both axes"),
]


REDUCED = [
    # name, full width, full height, scale, seed, why: the source is `pattern` at the reduced
    # size ceil(full / scale), resized with the full image's geometry through Pillow's box.
    ("reduced-773x512-s2", 773, 512, 2, 15, "1/2 of an odd width: box 386.5 px wide over 387 pixels"),
    ("reduced-4032x3024-s4", 4032, 3024, 4, 16, "12 MP at 1/4: 1008x756 resampled as 4032x3024"),
    ("reduced-1001x1999-s8", 1001, 1999, 8, 17, "1/8 below the target size: the box upscales"),
    ("reduced-1535x1025-s2", 1535, 1025, 2, 18, "both sides odd at 1/2"),
]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def golden(img, spec, full=None):
    """`full` = (width, height, scale): img is that image decoded at 1/scale."""
    w, h = img.size
    if full:
        fw, fh, scale = full
        rw, rh = resized_size(fw, fh, spec["resizeShorter"])
        resized = img.resize((rw, rh), Image.BILINEAR, box=(0, 0, fw / scale, fh / scale))
    else:
        rw, rh = resized_size(w, h, spec["resizeShorter"])
        # torchvision returns the image untouched when the size already matches; Pillow's
        # resize would be an exact copy anyway.
        resized = img if (rw, rh) == (w, h) else img.resize((rw, rh), Image.BILINEAR)
    crop, _ = center_crop(resized, spec["cropHeight"], spec["cropWidth"])
    assert crop.size == (spec["cropWidth"], spec["cropHeight"]), crop.size
    return crop.tobytes(), (rw, rh), crop_offset(rw, rh, spec["cropHeight"], spec["cropWidth"])


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(PHOTOS_OUT, exist_ok=True)
    cases = []

    for name, filename in PHOTOS:
        src_path = os.path.join(PHOTOS_IN, filename)
        dst_path = os.path.join(PHOTOS_OUT, filename)
        if os.path.exists(src_path):
            shutil.copyfile(src_path, dst_path)
        img = Image.open(dst_path).convert("RGB")
        raw = img.tobytes()
        with open(os.path.join(OUT, name + ".src.rgb"), "wb") as f:
            f.write(raw)
        data, resized, offset = golden(img, IMAGENET)
        with open(os.path.join(OUT, name + ".u8"), "wb") as f:
            f.write(data)
        cases.append({
            "name": name,
            "source": {"kind": "rgb", "file": name + ".src.rgb", "from": "photos/" + filename,
                       "sha256": sha256(raw)},
            "width": img.size[0], "height": img.size[1],
            "spec": IMAGENET, "resized": list(resized), "offset": list(offset),
            "golden": name + ".u8", "sha256": sha256(data),
            "why": "real photo",
        })

    license_src = os.path.join(PHOTOS_IN, "LICENSE.md")
    if os.path.exists(license_src):
        shutil.copyfile(license_src, os.path.join(PHOTOS_OUT, "LICENSE.md"))

    for name, w, h, seed, overrides, why in SYNTHETIC:
        spec = dict(IMAGENET, **overrides)
        raw = pattern(w, h, seed)
        img = Image.frombytes("RGB", (w, h), raw)
        data, resized, offset = golden(img, spec)
        with open(os.path.join(OUT, name + ".u8"), "wb") as f:
            f.write(data)
        cases.append({
            "name": name,
            "source": {"kind": "pattern", "seed": seed, "sha256": sha256(raw)},
            "width": w, "height": h,
            "spec": spec, "resized": list(resized), "offset": list(offset),
            "golden": name + ".u8", "sha256": sha256(data),
            "why": why,
        })

    for name, fw, fh, scale, seed, why in REDUCED:
        w, h = -(-fw // scale), -(-fh // scale)
        raw = pattern(w, h, seed)
        img = Image.frombytes("RGB", (w, h), raw)
        data, resized, offset = golden(img, IMAGENET, (fw, fh, scale))
        with open(os.path.join(OUT, name + ".u8"), "wb") as f:
            f.write(data)
        cases.append({
            "name": name,
            "source": {"kind": "pattern", "seed": seed, "sha256": sha256(raw)},
            "width": w, "height": h,
            "reduction": {"fullWidth": fw, "fullHeight": fh, "scale": scale},
            "spec": IMAGENET, "resized": list(resized), "offset": list(offset),
            "golden": name + ".u8", "sha256": sha256(data),
            "why": why,
        })

    import PIL
    index = {
        "generator": "scripts/make-preprocess-golden.py",
        "pillow": PIL.__version__,
        "python": sys.version.split()[0],
        "layout": "<golden>: cropHeight x cropWidth x 3 uint8, HWC RGB; <name>.src.rgb: width x height x 3 uint8",
        "cases": cases,
    }
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    print("wrote %d cases to %s" % (len(cases), OUT))


if __name__ == "__main__":
    main()
