#!/usr/bin/env python3
"""Makes the EXIF test photos for test/worker/api.test.ts from chelsea.png (CC0, scikit-image).

  chelsea-upright.jpg   the photo, JPEG q95 4:4:4, no EXIF
  chelsea-exif6.jpg     the same pixels stored rotated 90 degrees counter-clockwise, with
                        EXIF Orientation 6 ("rotate 90 CW to display"): decoded upright it is
                        the photo again
  chelsea-noexif6.jpg   the stored-rotated pixels without the EXIF tag (a negative control)

Deterministic; run with Debian's python3-pil: /usr/bin/python3 scripts/make-exif-photos.py
"""
from pathlib import Path
from PIL import Image

root = Path(__file__).resolve().parent.parent
photos = root / "test" / "fixtures" / "photos"
src = Image.open(photos / "chelsea.png").convert("RGB")
options = dict(quality=95, subsampling=0, optimize=False)
src.save(photos / "chelsea-upright.jpg", **options)
stored = src.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise
exif = Image.Exif()
exif[0x0112] = 6
stored.save(photos / "chelsea-exif6.jpg", exif=exif.tobytes(), **options)
stored.save(photos / "chelsea-noexif6.jpg", **options)
