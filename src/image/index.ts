/**
 * The image decoding layer: raw upload bytes in, upright 8-bit RGB out, as the reference
 * decodes them (Pillow's `ImageOps.exif_transpose(Image.open(f)).convert('RGB')`, first frame).
 *
 *   sniff(bytes)                        the format, by magic bytes only
 *   probe(bytes, limits?)               format, stored size and EXIF orientation from the header
 *   planDecode(bytes, limits, opts)     how this upload will be decoded: scale, memory, streaming
 *   decodeRows(bytes, plan, sink)       rows straight into a RowSink (plan.streams)
 *   decodePlanned(bytes, plan)          the whole image at the plan's scale, upright (async signature)
 *   decodePlannedSync(bytes, plan)      the same, synchronously (every decoder is synchronous)
 *   decodeImage(bytes, limits)          the whole image at full size, upright
 *
 * Formats: JPEG (our decoder, ./jpeg/: bit-exact with Pillow's libjpeg-turbo), PNG (ours,
 * streamed), GIF (ours, first frame), WebP (our libwebp 1.2.4 build in wasm, ./webp/: streamed,
 * lossy scaled by libwebp's rescaler). Anything else is a 415
 * that names what was sent and what we read.
 *
 * A big JPEG is decoded in the DCT domain at 1/2, 1/4 or 1/8, a big lossy WebP at 1/2..1/5 by
 * libwebp's rescaler, when the model resizes it far below that anyway (`target`, the model's
 * resizeShorter); the plan then carries the `reduction` that the resize needs to keep the full
 * image's geometry. Decoders that can stream (JPEG, non-interlaced PNG, WebP) hand rows to the
 * resize and never hold the image.
 *
 * Every failure is an ApiError: 415 for formats we do not read, 413 for too many pixels (from
 * the header, before any decoding) or too much decoder memory, 422 for corrupt, truncated or
 * unsupported-variant files. Plain JS over Uint8Array: runs in workerd without nodejs_compat.
 */
import { tooLarge, unsupportedMedia } from '../errors';
import { decodeGif, gifDecodeMemory, readGifHeader, type GifHeader } from './gif';
import { readJpegHeader, type JpegHeader } from './jpeg';
import { decodeJpegImage, decodeJpegTo, jpegDecodeMemory, jpegScaleFor, type JpegScale } from './jpeg/index';
import { applyOrientation } from './orient';
import { decodePng, decodePngTo, pngDecodeMemory, readPngHeader, type PngHeader } from './png';
import { sniff, unsupportedFormatMessage } from './sniff';
import { readWebpHeader, webpChecksAlpha, webpDecodeMemory, webpScaleFor, type WebpHeader, type WebpScale } from './webp/header';
import { decodeWebpImage, decodeWebpTo, webpDecoderMemoryBytes } from './webp/index';

/**
 * Memory our decoders keep between decodes: libwebp's wasm memory grows to its largest decode
 * and never shrinks. Admission control counts it with the model's heap (src/app.ts).
 */
export const decoderMemoryBytes = (): number => webpDecoderMemoryBytes();
import { DEFAULT_MAX_MEMORY_MB, type DecodeLimits, type ImageInfo, type RgbImage, type RowSink } from './types';

export { sniff, SUPPORTED_FORMATS } from './sniff';
export { applyOrientation } from './orient';
export { readExifOrientation } from './exif';
export { jpegScaleFor, type JpegScale } from './jpeg/index';
export { DEFAULT_MAX_MEMORY_MB, type DecodeLimits, type ImageFormat, type ImageInfo, type RgbImage, type RowSink } from './types';

type Header = JpegHeader | PngHeader | GifHeader | WebpHeader;

/** How one upload will be decoded (see planDecode). */
export interface DecodePlan {
  header: Header;
  /** Reduced scale: the decoded image is ceil(width / scale) x ceil(height / scale). 1 but for JPEG (DCT) and lossy WebP (libwebp's rescaler). */
  scale: JpegScale | WebpScale;
  /** Decoded size in stored orientation (what decodeRows writes). */
  width: number;
  height: number;
  /** For the resize: the upright full size this decode is a 1/scale reduction of. */
  reduction?: { fullWidth: number; fullHeight: number; scale: number };
  /** Whether decodeRows can stream this upload: stored orientation is upright, the decoder streams. */
  streams: boolean;
  /** Bytes the decode will allocate: streamed, or collected (plus turning it upright) if not. */
  memoryBytes: number;
  /** Which decoder and path, for timings, logs and the fidelity table. */
  path: string;
}

function readHeader(bytes: Uint8Array): Header {
  switch (sniff(bytes)) {
    case 'jpeg':
      return readJpegHeader(bytes);
    case 'png':
      return readPngHeader(bytes);
    case 'gif':
      return readGifHeader(bytes);
    case 'webp':
      return readWebpHeader(bytes);
    default:
      throw unsupportedMedia(unsupportedFormatMessage(bytes));
  }
}

/** Bytes the format's decoder allocates for this header (streamed where it can stream). */
function decoderMemory(header: Header, scale: JpegScale | WebpScale, bytes: Uint8Array, budget: number): number {
  switch (header.format) {
    case 'jpeg':
      return jpegDecodeMemory(header, scale as JpegScale, bytes);
    case 'png':
      return pngDecodeMemory(header);
    case 'gif':
      return gifDecodeMemory(header);
    case 'webp':
      return webpDecodeMemory(header, scale as WebpScale, webpChecksAlpha(header, scale as WebpScale, budget));
  }
}

/** Decoders that hand rows to a sink as they go; the others (GIF) return the whole image. */
const streaming = (header: Header): header is JpegHeader | PngHeader | WebpHeader => header.format !== 'gif';

/** The reduced scale for a model resizing the shorter side to `target` (1: full size). */
function scaleFor(header: Header, target: number | undefined): JpegScale | WebpScale {
  if (!target) return 1;
  if (header.format === 'jpeg') return jpegScaleFor(header.width, header.height, target);
  if (header.format === 'webp') return webpScaleFor(header, target);
  return 1;
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
 * Reads the header and decides how to decode: the reduced scale (JPEG, lossy WebP) for a model that resizes the
 * shorter side to `target` (none: full size), whether rows can stream into the resize (not
 * when the caller will `collect` the image), and the memory all that takes, refused with 413
 * over `limits.maxMemoryMB` before any decoding.
 */
export function planDecode(bytes: Uint8Array, limits: DecodeLimits, options: { target?: number; collect?: boolean } = {}): DecodePlan {
  const header = readHeader(bytes);
  checkPixels(header, limits);
  const { target, collect = false } = options;
  const scale = scaleFor(header, target);
  const width = Math.ceil(header.width / scale);
  const height = Math.ceil(header.height / scale);
  const transposed = header.orientation >= 5;
  const streams = header.orientation === 1 && !collect && streaming(header);
  const budget = (limits.maxMemoryMB ?? DEFAULT_MAX_MEMORY_MB) * 2 ** 20;
  const decoderBytes = decoderMemory(header, scale, bytes, budget);
  // Not streamed: the image is collected (the GIF figure includes its own output), and turning
  // it upright may copy it once more.
  const collected = (streams || !streaming(header) ? 0 : width * height * 3) + (transposed ? width * height * 3 : 0);
  const memoryBytes = decoderBytes + collected;
  if (memoryBytes > budget) {
    const why =
      header.format === 'png' && header.interlaced
        ? ' (an interlaced PNG must be held whole)'
        : header.format === 'webp' && header.lossless
          ? ' (libwebp holds a lossless WebP whole: 4 bytes a pixel)'
          : header.format === 'gif'
            ? ' (a GIF frame is decoded whole)'
            : '';
    throw tooLarge(
      `${header.format.toUpperCase()} of ${header.width}x${header.height} needs ${mb(memoryBytes)} MB to decode${why}, over the limit of ${limits.maxMemoryMB ?? DEFAULT_MAX_MEMORY_MB} MB`,
    );
  }
  return {
    header,
    scale,
    width,
    height,
    ...(scale > 1
      ? { reduction: { fullWidth: transposed ? header.height : header.width, fullHeight: transposed ? header.width : header.height, scale } }
      : {}),
    streams,
    memoryBytes,
    path: pathOf(header, scale),
  };
}

const mb = (bytes: number) => Math.ceil((bytes / 2 ** 20) * 10) / 10;

function pathOf(header: Header, scale: number): string {
  if (header.format === 'png') return header.interlaced ? 'png-interlaced' : 'png';
  if (header.format === 'gif') return 'gif';
  if (header.format === 'webp') {
    const kind = header.lossless ? 'webp-lossless' : 'webp-lossy';
    return scale > 1 ? `${kind}@1/${scale}` : kind;
  }
  const kind = (header.sof === 0xc2 || header.sof === 0xca ? 'jpeg-progressive' : 'jpeg') + (header.sof === 0xc9 || header.sof === 0xca ? '-arith' : '');
  return scale > 1 ? `${kind}@1/${scale}` : kind;
}

/** Streams the planned decode into `sink`, rows in stored order (= upright: plan.streams). */
export function decodeRows(bytes: Uint8Array, plan: DecodePlan, sink: RowSink, limits: DecodeLimits): void {
  const h = plan.header;
  if (!plan.streams || !streaming(h)) throw new Error(`decodeRows: ${plan.path} with orientation ${h.orientation} does not stream`);
  if (h.format === 'jpeg') decodeJpegTo(bytes, h, plan.scale as JpegScale, sink, limits);
  else if (h.format === 'webp') decodeWebpTo(bytes, h, plan.scale as WebpScale, sink, limits);
  else decodePngTo(bytes, h, sink, limits);
}

/** The planned decode as one upright image (every decoder is synchronous). */
export function decodePlannedSync(bytes: Uint8Array, plan: DecodePlan, limits: DecodeLimits): RgbImage {
  const h = plan.header;
  let image: RgbImage;
  switch (h.format) {
    case 'jpeg':
      image = decodeJpegImage(bytes, h, plan.scale as JpegScale, limits);
      break;
    case 'png':
      image = decodePng(bytes, h, limits);
      break;
    case 'gif':
      image = decodeGif(bytes, h, limits);
      break;
    case 'webp':
      image = decodeWebpImage(bytes, h, plan.scale as WebpScale, limits);
      break;
  }
  // Orientation only permutes pixels, so applying it after scaling is the same as before.
  return applyOrientation(image, h.orientation);
}

/** The planned decode as one upright image, any format (async for its callers: every decoder is synchronous now). */
export async function decodePlanned(bytes: Uint8Array, plan: DecodePlan, limits: DecodeLimits): Promise<RgbImage> {
  return decodePlannedSync(bytes, plan, limits);
}

/** Decodes one upload to upright RGB at full size, any format (tools and tests). */
export function decodeImage(bytes: Uint8Array, limits: DecodeLimits): RgbImage {
  return decodePlannedSync(bytes, planDecode(bytes, limits, { collect: true }), limits);
}

/** The same, with a promise (kept for callers from when WebP decoded asynchronously). */
export async function decodeImageAsync(bytes: Uint8Array, limits: DecodeLimits): Promise<RgbImage> {
  return decodePlanned(bytes, planDecode(bytes, limits, { collect: true }), limits);
}
