import type { ImageFormat } from './types';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const;

/**
 * The format by its magic bytes. Content-Type and file names are the client's claims, so they
 * are never consulted. JPEG is SOI followed by the 0xFF of the next marker, as every JPEG
 * writer emits and every decoder (libjpeg, browsers) requires.
 */
export function sniff(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= PNG_SIGNATURE.length && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'png';
  return null;
}
