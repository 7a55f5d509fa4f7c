/**
 * EXIF orientation, and nothing else. The only tag we need is in IFD0, so a bounds-checked walk
 * of one IFD beats a general EXIF library (exifr and friends add tens of KB to the Worker for
 * features we would never call).
 */

const ORIENTATION_TAG = 0x0112;
const TYPE_SHORT = 3;
const TYPE_LONG = 4;
const EXIF_PREFIX = [0x45, 0x78, 0x69, 0x66, 0x00, 0x00] as const; // "Exif\0\0"

/** True when `bytes` starts with the "Exif\0\0" that precedes the TIFF structure in APP1. */
export function hasExifPrefix(bytes: Uint8Array): boolean {
  return bytes.length >= EXIF_PREFIX.length && EXIF_PREFIX.every((b, i) => bytes[i] === b);
}

/**
 * Orientation 1..8 from a TIFF structure (the EXIF payload after "Exif\0\0"; a PNG eXIf chunk
 * holds it bare, though some writers keep the prefix there too, so it is skipped if present).
 * Anything unreadable gives 1: broken metadata must not cost the user their upload, and 1 is
 * how browsers show such files.
 */
export function readExifOrientation(payload: Uint8Array): number {
  const tiff = hasExifPrefix(payload) ? payload.subarray(EXIF_PREFIX.length) : payload;
  if (tiff.length < 8) return 1;
  let little: boolean;
  if (tiff[0] === 0x49 && tiff[1] === 0x49) little = true; // "II"
  else if (tiff[0] === 0x4d && tiff[1] === 0x4d) little = false; // "MM"
  else return 1;
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  if (view.getUint16(2, little) !== 42) return 1;
  const ifd = view.getUint32(4, little);
  if (ifd < 8 || ifd + 2 > tiff.length) return 1;
  const count = view.getUint16(ifd, little);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) return 1;
    if (view.getUint16(entry, little) !== ORIENTATION_TAG) continue;
    const type = view.getUint16(entry + 2, little);
    // SHORT is what the standard says; a few writers use LONG. Both fit in the value field.
    const value =
      type === TYPE_SHORT ? view.getUint16(entry + 8, little) : type === TYPE_LONG ? view.getUint32(entry + 8, little) : 0;
    return value >= 1 && value <= 8 ? value : 1;
  }
  return 1;
}
