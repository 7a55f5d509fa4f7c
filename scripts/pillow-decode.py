#!/usr/bin/env python3
"""What the reference decoder makes of image files: one JSON object per file on stdout.

For each path: `{"file", "width", "height", "sha256"}` of Pillow's
`ImageOps.exif_transpose(Image.open(f))` first frame `.convert('RGB')` bytes (what the
Worker's decoders must reproduce), or `{"file", "error"}` when Pillow refuses the file.
`--raw DIR` also writes each decode as DIR/<name>.rgb (raw RGB, rows top to bottom), and
`--no-transpose` leaves EXIF orientation alone.

Reference: Debian 12's python3-pil (Pillow 9.4, libjpeg-turbo 2.1, libwebp 1.2):
    apt-get install -y python3-pil
    /usr/bin/python3 scripts/pillow-decode.py ../shared/data/pillow-tests/*.jpg
"""

import argparse
import hashlib
import json
import os
import sys
import warnings

import PIL
from PIL import Image, ImageOps

Image.MAX_IMAGE_PIXELS = None  # the Worker has its own pixel limit; report what Pillow decodes


def decode(path, transpose):
    with Image.open(path) as im:
        im.seek(0)
        im.load()
        if transpose:
            im = ImageOps.exif_transpose(im)
        return im.convert("RGB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--raw", help="write <name>.rgb files here")
    ap.add_argument("--no-transpose", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    for path in args.files:
        name = os.path.basename(path)
        try:
            rgb = decode(path, not args.no_transpose)
        except Exception as err:  # noqa: BLE001 - any refusal is an answer
            print(json.dumps({"file": name, "error": f"{type(err).__name__}: {err}"[:200]}))
            continue
        data = rgb.tobytes()
        if args.raw:
            os.makedirs(args.raw, exist_ok=True)
            with open(os.path.join(args.raw, os.path.splitext(name)[0] + ".rgb"), "wb") as f:
                f.write(data)
        print(json.dumps({"file": name, "width": rgb.width, "height": rgb.height, "sha256": hashlib.sha256(data).hexdigest()}))
    print(json.dumps({"pillow": PIL.__version__}), file=sys.stderr)


if __name__ == "__main__":
    main()
