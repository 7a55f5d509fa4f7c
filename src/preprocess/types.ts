export type { PreprocessSpec } from '../models/manifest.js';

/**
 * Decoded image as src/image produces it: RGB interleaved, 3 bytes per pixel, rows top to
 * bottom. Declared structurally here so preprocessing does not depend on the decoder module.
 */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}
