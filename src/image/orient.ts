/**
 * EXIF orientation: turns stored pixels upright, as PIL's ImageOps.exif_transpose does.
 * 2 mirror, 3 rotate 180, 4 flip vertical: in place, no allocation at all. 5 transpose, 6 rotate 90
 * clockwise, 7 transverse, 8 rotate 90 counter-clockwise swap width and height and need one
 * new buffer (an in-place transpose of a non-square image costs more than it saves).
 */
import type { RgbImage } from './types';

/** Upright pixels; `img` itself is reused (1..4) or left to the garbage collector (5..8). */
export function applyOrientation(img: RgbImage, orientation: number): RgbImage {
  switch (orientation) {
    case 2:
      mirror(img);
      return img;
    case 3:
      reversePixels(img.data, 0, img.width * img.height);
      return img;
    case 4:
      flipRows(img);
      return img;
    case 5:
    case 6:
    case 7:
    case 8:
      return transposed(img, orientation);
    default:
      return img;
  }
}

function swapPixels(d: Uint8Array, i: number, j: number): void {
  const a = i * 3;
  const b = j * 3;
  for (let k = 0; k < 3; k++) {
    const t = d[a + k]!;
    d[a + k] = d[b + k]!;
    d[b + k] = t;
  }
}

/** Reverses the order of pixels [from, to). */
function reversePixels(d: Uint8Array, from: number, to: number): void {
  for (let i = from, j = to - 1; i < j; i++, j--) swapPixels(d, i, j);
}

function mirror({ width, height, data }: RgbImage): void {
  for (let y = 0; y < height; y++) reversePixels(data, y * width, (y + 1) * width);
}

/**
 * Swaps rows byte by byte: no row buffer, since a row of a very wide image is megabytes that
 * the decode plan's memory figure does not hold (found by fuzzing: a 2000000x2 PNG).
 */
function flipRows({ width, height, data }: RgbImage): void {
  const stride = width * 3;
  for (let top = 0, bottom = height - 1; top < bottom; top++, bottom--) {
    for (let a = top * stride, b = bottom * stride, end = a + stride; a < end; a++, b++) {
      const t = data[a]!;
      data[a] = data[b]!;
      data[b] = t;
    }
  }
}

/**
 * Orientations 5..8. The output is `height` wide and `width` tall; output pixel (x, y) comes
 * from source pixel index start + x * dx + y * dy, where for a source w x h:
 *   5 transpose    src(y, x)          start 0,               dx  w, dy  1
 *   6 rotate CW    src(y, h-1-x)      start (h-1)w,          dx -w, dy  1
 *   7 transverse   src(w-1-y, h-1-x)  start (h-1)w + w-1,    dx -w, dy -1
 *   8 rotate CCW   src(w-1-y, x)      start w-1,             dx  w, dy -1
 */
function transposed({ width: w, height: h, data }: RgbImage, orientation: 5 | 6 | 7 | 8): RgbImage {
  const bottomUp = orientation === 6 || orientation === 7; // output x walks source rows upwards
  const rightToLeft = orientation === 7 || orientation === 8; // output y walks source columns leftwards
  const dx = bottomUp ? -w : w;
  const dy = rightToLeft ? -1 : 1;
  const start = (bottomUp ? (h - 1) * w : 0) + (rightToLeft ? w - 1 : 0);
  const out = new Uint8Array(w * h * 3);
  let o = 0;
  // Output is h wide and w tall.
  for (let y = 0; y < w; y++) {
    for (let x = 0, s = (start + y * dy) * 3; x < h; x++, s += dx * 3) {
      out[o++] = data[s]!;
      out[o++] = data[s + 1]!;
      out[o++] = data[s + 2]!;
    }
  }
  return { width: h, height: w, data: out };
}
