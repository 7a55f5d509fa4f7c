/**
 * The image decoding layer: raw upload bytes in, upright 8-bit RGB out.
 *
 *   sniff(bytes)               'jpeg' | 'png' | null, by magic bytes only
 *   probe(bytes, limits?)      format, stored size and EXIF orientation from the header alone
 *   decodeImage(bytes, limits) RgbImage, orientation applied
 *
 * Every failure is an ApiError: 415 for neither JPEG nor PNG, 413 for too many pixels (from
 * the header, before any decoding) or too much decoder memory, 422 for corrupt, truncated or
 * unsupported-variant files. Pixel values follow PIL's `Image.open(f).convert('RGB')`, the
 * model zoo's reference (alpha dropped, see png.ts), plus `ImageOps.exif_transpose`.
 *
 * Plain JS over Uint8Array: runs in workerd without nodejs_compat.
 */
import { tooLarge, unsupportedMedia } from '../errors';
import { decodeJpeg, readJpegHeader, type JpegHeader } from './jpeg';
import { decodeJpegScaled, type JpegScale } from './jpeg-scaled';
import { applyOrientation } from './orient';
import { decodePng, readPngHeader, type PngHeader } from './png';
import { sniff } from './sniff';
import type { DecodeLimits, ImageInfo, RgbImage } from './types';

export { sniff } from './sniff';
export { applyOrientation } from './orient';
export { readExifOrientation } from './exif';
export { DEFAULT_MAX_MEMORY_MB, type DecodeLimits, type ImageFormat, type ImageInfo, type RgbImage } from './types';

function readHeader(bytes: Uint8Array): JpegHeader | PngHeader {
  switch (sniff(bytes)) {
    case 'jpeg':
      return readJpegHeader(bytes);
    case 'png':
      return readPngHeader(bytes);
    default:
      throw unsupportedMedia('not a JPEG or PNG image');
  }
}

function checkPixels(info: ImageInfo, limits: DecodeLimits): void {
  const pixels = info.width * info.height;
  if (pixels > limits.maxPixels) {
    throw tooLarge(`image is ${info.width}x${info.height} (${pixels} pixels), over the limit of ${limits.maxPixels}`);
  }
}

/**
 * Header facts without decoding: cheap enough to run on every upload of a batch before any
 * of them is decoded. With `limits`, also refuses too many pixels (413).
 */
export function probe(bytes: Uint8Array, limits?: DecodeLimits): ImageInfo {
  const { format, width, height, orientation } = readHeader(bytes);
  const info = { format, width, height, orientation };
  if (limits) checkPixels(info, limits);
  return info;
}

/**
 * Decodes one upload to upright RGB. The pixel limit is checked from the header first, so an
 * image that is too large costs a header read, not a decode.
 */
export function decodeImage(bytes: Uint8Array, limits: DecodeLimits): RgbImage {
  const header = readHeader(bytes);
  checkPixels(header, limits);
  let image: RgbImage | undefined;
  if (header.format === 'jpeg') {
    const denom = jpegScaleFor(header.width, header.height, limits.minShorterSide);
    // Undefined for what the scaled decoder does not cover (progressive, CMYK, ...): jpeg-js.
    if (denom > 1) image = decodeJpegScaled(bytes, header, denom);
    image ??= decodeJpeg(bytes, header, limits);
  } else {
    image = decodePng(bytes, header, limits);
  }
  // Orientation only permutes pixels, so applying it after scaling is the same as before.
  return applyOrientation(image, header.orientation);
}

/**
 * Bytes the decoder will take for this upload (what admission control reserves). Interim
 * figures of the decoders in use: the scaled JPEG path holds its planes and the RGB output,
 * jpeg-js ~13-20 bytes a pixel, PNG ~9.
 */
export function decodeMemoryBytes(bytes: Uint8Array, limits: DecodeLimits): number {
  const header = readHeader(bytes);
  const pixels = header.width * header.height;
  if (header.format === 'png') return pixels * 9;
  const denom = jpegScaleFor(header.width, header.height, limits.minShorterSide);
  return denom > 1 ? Math.ceil(pixels / (denom * denom)) * 6 : pixels * 20;
}

/**
 * Largest JPEG scale 1/8, 1/4, 1/2 whose decoded shorter side, ceil(side / denom), is still
 * at least `minShorterSide`; 1 when none is (or no minimum was asked for). Orientation does
 * not matter: it swaps the sides, not the shorter one's length.
 */
export function jpegScaleFor(width: number, height: number, minShorterSide: number | undefined): JpegScale {
  if (minShorterSide === undefined || !(minShorterSide > 0)) return 1;
  const shorter = Math.min(width, height);
  for (const denom of [8, 4, 2] as const) {
    if (Math.ceil(shorter / denom) >= minShorterSide) return denom;
  }
  return 1;
}
