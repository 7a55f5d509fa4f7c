import type { ImageFormat } from './types';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const;

/** The formats we decode, as the 415 message names them. */
export const SUPPORTED_FORMATS = 'JPEG, PNG, WebP or GIF';

const ascii = (bytes: Uint8Array, start: number, end: number): string =>
  String.fromCharCode(...bytes.subarray(start, Math.min(end, bytes.length)));

const startsWith = (bytes: Uint8Array, magic: readonly number[], at = 0): boolean =>
  bytes.length >= at + magic.length && magic.every((b, i) => bytes[at + i] === b);

/**
 * The format by its magic bytes. Content-Type and file names are the client's claims, so they
 * are never consulted. JPEG is SOI followed by the 0xFF of the next marker, as every JPEG
 * writer emits and every decoder (libjpeg, browsers) requires. WebP is a RIFF container of form
 * type WEBP; GIF is either signature (Pillow accepts both, and so do we).
 */
export function sniff(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (startsWith(bytes, PNG_SIGNATURE)) return 'png';
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  if (bytes.length >= 6 && (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a')) return 'gif';
  return null;
}

/** ISO base media file (AVIF, HEIC, MP4...): the brands of its leading ftyp box. */
function ftypBrands(bytes: Uint8Array): string[] | null {
  if (bytes.length < 16 || ascii(bytes, 4, 8) !== 'ftyp') return null;
  const size = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
  const end = Math.min(bytes.length, size >= 16 ? size : 16, 4096);
  const brands = [ascii(bytes, 8, 12)];
  for (let i = 16; i + 4 <= end; i += 4) brands.push(ascii(bytes, i, i + 4));
  return brands;
}

/** The name of a well-known unsupported format, from its magic bytes; null when unrecognised. */
function unsupportedFormatName(bytes: Uint8Array): string | null {
  const brands = ftypBrands(bytes);
  if (brands) {
    if (brands.some((b) => b === 'avif' || b === 'avis')) return 'AVIF';
    if (brands.some((b) => ['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1'].includes(b))) return 'HEIC/HEIF';
    if (brands.some((b) => b === 'jxl ')) return 'JPEG XL';
    if (brands.some((b) => b === 'crx ')) return 'Canon CR3 raw';
    return 'MP4/QuickTime (ISO media)';
  }
  if (startsWith(bytes, [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20, 0x0d, 0x0a, 0x87, 0x0a]) || startsWith(bytes, [0xff, 0x0a])) {
    return 'JPEG XL';
  }
  if (startsWith(bytes, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a]) || startsWith(bytes, [0xff, 0x4f, 0xff, 0x51])) {
    return 'JPEG 2000';
  }
  const head2 = ascii(bytes, 0, 2);
  const head4 = ascii(bytes, 0, 4);
  if (head4 === 'II*\0' || head4 === 'MM\0*' || head4 === 'II+\0' || head4 === 'MM\0+') return 'TIFF';
  if (head2 === 'BM' && bytes.length >= 14) return 'BMP';
  if (startsWith(bytes, [0x00, 0x00, 0x01, 0x00]) && bytes.length >= 6) return 'ICO';
  if (startsWith(bytes, [0x00, 0x00, 0x02, 0x00]) && bytes.length >= 6) return 'CUR';
  if (head4 === '8BPS') return 'PSD';
  if (head4 === 'qoif') return 'QOI';
  if (head4 === '%PDF') return 'PDF';
  if (ascii(bytes, 0, 10) === '#?RADIANCE' || ascii(bytes, 0, 6) === '#?RGBE') return 'Radiance HDR';
  if (startsWith(bytes, [0x76, 0x2f, 0x31, 0x01])) return 'OpenEXR';
  if (head4 === 'DDS ') return 'DDS';
  if (head4 === 'RIFF') return `RIFF ${JSON.stringify(ascii(bytes, 8, 12))}`;
  if (/^P[1-7]\s/.test(ascii(bytes, 0, 3))) return 'Netpbm (PBM/PGM/PPM)';
  const text = ascii(bytes, 0, 256).trimStart().toLowerCase();
  if (text.startsWith('<svg') || (text.startsWith('<?xml') && text.includes('<svg'))) return 'SVG';
  if (text.startsWith('<!doctype html') || text.startsWith('<html')) return 'HTML';
  return null;
}

/**
 * The 415 message for bytes sniff() does not recognise: names a well-known unsupported format
 * when its magic bytes say which ("AVIF is not supported; send JPEG, PNG, WebP or GIF"), and
 * lists the supported formats either way.
 */
export function unsupportedFormatMessage(bytes: Uint8Array): string {
  if (bytes.length === 0) return `empty upload; send ${SUPPORTED_FORMATS}`;
  const name = unsupportedFormatName(bytes);
  return name ? `${name} is not supported; send ${SUPPORTED_FORMATS}` : `unrecognised image format; send ${SUPPORTED_FORMATS}`;
}
