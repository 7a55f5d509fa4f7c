/**
 * Colour conversion to Pillow's RGB: jdcolor.c's fixed-point YCbCr tables (SCALEBITS 16) for
 * YCbCr and YCCK, then for four components Pillow's own path: it reads libjpeg's CMYK as
 * inverted ("CMYK;I", whatever the Adobe segment says) and converts with cmyk2rgb
 * (Convert.c, Pillow 9.4). Each function converts `n` pixels of planar rows into RGB.
 */

const SCALEBITS = 16;
const ONE_HALF = 1 << (SCALEBITS - 1);
const FIX = (x: number): number => Math.floor(x * (1 << SCALEBITS) + 0.5);

export const CR_R = new Int32Array(256);
export const CB_B = new Int32Array(256);
/** Cr=>G and Cb=>G are kept scaled; Cb_g carries the rounding half. */
export const CR_G = new Int32Array(256);
export const CB_G = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  const x = i - 128;
  CR_R[i] = (FIX(1.402) * x + ONE_HALF) >> SCALEBITS;
  CB_B[i] = (FIX(1.772) * x + ONE_HALF) >> SCALEBITS;
  CR_G[i] = -FIX(0.71414) * x;
  CB_G[i] = -FIX(0.34414) * x + ONE_HALF;
}

/** Clamp for sums that can leave 0..255 by at most ~256 either way (jdcolor's range_limit). */
export const CLAMP = (() => {
  const t = new Uint8Array(1024);
  for (let i = 0; i < 1024; i++) t[i] = i < 384 ? 0 : i > 639 ? 255 : i - 384;
  return t;
})();
const BIAS = 384;

export function ycbcrToRgb(y: Uint8Array, yo: number, cb: Uint8Array, cbo: number, cr: Uint8Array, cro: number, out: Uint8Array, o: number, n: number): void {
  for (let x = 0; x < n; x++, o += 3) {
    const Y = y[yo + x]! + BIAS;
    const b = cb[cbo + x]!;
    const r = cr[cro + x]!;
    out[o] = CLAMP[Y + CR_R[r]!]!;
    out[o + 1] = CLAMP[Y + ((CB_G[b]! + CR_G[r]!) >> SCALEBITS)]!;
    out[o + 2] = CLAMP[Y + CB_B[b]!]!;
  }
}

export function planesToRgb(a: Uint8Array, ao: number, b: Uint8Array, bo: number, c: Uint8Array, co: number, out: Uint8Array, o: number, n: number): void {
  for (let x = 0; x < n; x++, o += 3) {
    out[o] = a[ao + x]!;
    out[o + 1] = b[bo + x]!;
    out[o + 2] = c[co + x]!;
  }
}

export function grayToRgb(g: Uint8Array, go: number, out: Uint8Array, o: number, n: number): void {
  for (let x = 0; x < n; x++, o += 3) {
    const v = g[go + x]!;
    out[o] = v;
    out[o + 1] = v;
    out[o + 2] = v;
  }
}

/** Pillow's MULDIV255. */
const muldiv255 = (a: number, b: number): number => {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
};

/**
 * libjpeg's CMYK samples (c, m, y, k) -> Pillow RGB: "CMYK;I" inverts each, then cmyk2rgb
 * gives nk - MULDIV255(C, nk) with nk = 255 - K, i.e. nk = k here.
 */
function cmykPixel(c: number, m: number, y: number, k: number, out: Uint8Array, o: number): void {
  out[o] = k - muldiv255(255 - c, k);
  out[o + 1] = k - muldiv255(255 - m, k);
  out[o + 2] = k - muldiv255(255 - y, k);
}

export function cmykToRgb(c: Uint8Array, co: number, m: Uint8Array, mo: number, y: Uint8Array, yo: number, k: Uint8Array, ko: number, out: Uint8Array, o: number, n: number): void {
  for (let x = 0; x < n; x++, o += 3) cmykPixel(c[co + x]!, m[mo + x]!, y[yo + x]!, k[ko + x]!, out, o);
}

/** jdcolor.c ycck_cmyk_convert (C, M, Y = 255 - the YCbCr->RGB result; K as is), then as CMYK. */
export function ycckToRgb(yy: Uint8Array, yo: number, cb: Uint8Array, cbo: number, cr: Uint8Array, cro: number, k: Uint8Array, ko: number, out: Uint8Array, o: number, n: number): void {
  for (let x = 0; x < n; x++, o += 3) {
    const Y = yy[yo + x]!;
    const b = cb[cbo + x]!;
    const r = cr[cro + x]!;
    const c = CLAMP[BIAS + 255 - (Y + CR_R[r]!)]!;
    const m = CLAMP[BIAS + 255 - (Y + ((CB_G[b]! + CR_G[r]!) >> SCALEBITS))]!;
    const yl = CLAMP[BIAS + 255 - (Y + CB_B[b]!)]!;
    cmykPixel(c, m, yl, k[ko + x]!, out, o);
  }
}
