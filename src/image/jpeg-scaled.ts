/**
 * Baseline JPEG decoding at 1/1, 1/2, 1/4 or 1/8 scale in the DCT domain, as libjpeg's
 * scale_num/scale_denom does: every block is Huffman-decoded (the AC coefficients have to be
 * read to be skipped), dequantized, and put through a reduced inverse DCT that yields 8, 4, 2
 * or 1 samples a side (jidctred.c's jpeg_idct_4x4 / 2x2 / 1x1 for the scaled ones). The
 * full-resolution image never exists: a 12 MP photo at 1/8 needs ~0.6 MB of planes instead
 * of jpeg-js's ~150 MB.
 *
 * Scope, deliberately small: SOF0/SOF1, Huffman, 8-bit samples, 1 component (grey) or 3
 * (YCbCr), any sampling factors, restart markers, one or several (non-interleaved) scans.
 * Everything else — progressive, arithmetic, 12-bit, CMYK/YCCK, Adobe RGB, truncated or
 * corrupt data — returns undefined and the caller falls back to jpeg-js, which then decodes
 * it or raises the usual error. So this decoder can only ever make a valid file cheaper.
 *
 * Pixel conventions follow jpeg-js, the decoder it stands in for. Subsampled chroma is first
 * decoded with a larger IDCT than the luma, as libjpeg does when scaling (4:2:0 chroma at 1/8
 * uses the 2x2 kernel), so at 1/2..1/8 it usually lands at the output's resolution; what
 * remains coarser (all chroma at 1/1, 4:1:1 at 1/2) is replicated like jpeg-js's `x * scaleX`
 * nearest lookup, not libjpeg's "fancy" triangle filter. YCbCr -> RGB is jpeg-js's JFIF
 * float formula with its truncation to integer.
 */
import { jpegReachesEoi, type JpegHeader } from './jpeg';
import type { RgbImage } from './types';

export type JpegScale = 1 | 2 | 4 | 8;

/** Zig-zag position -> natural (row-major) index, T.81 Figure A.6. */
const ZIGZAG = Uint8Array.from([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35,
  42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62,
  63,
]);

/** Internal: any structural problem; caught at the top and turned into "fall back". */
class Unsupported extends Error {}

const u16 = (b: Uint8Array, i: number): number => (b[i]! << 8) | b[i + 1]!;

/**
 * A Huffman table as a 16-bit direct lookup: entry = (code length << 8) | symbol, 0 for
 * codes not in the table. 256 KB a table, built in ~65k stores, and one array read per
 * symbol, which is what makes skipping millions of AC coefficients cheap.
 */
function buildHuffman(counts: Uint8Array, symbols: Uint8Array): Uint32Array {
  const lookup = new Uint32Array(1 << 16);
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    const n = counts[len - 1]!;
    for (let i = 0; i < n; i++) {
      if (code >= 1 << len) throw new Unsupported('bad Huffman table');
      const shift = 16 - len;
      const entry = (len << 8) | symbols[k++]!;
      lookup.fill(entry, code << shift, (code + 1) << shift);
      code++;
    }
    code <<= 1;
  }
  return lookup;
}

interface FrameComponent {
  id: number;
  h: number;
  v: number;
  tq: number;
  /** Dequantization table in natural order, resolved when the component's first scan starts. */
  quant: Int32Array | null;
  /** Blocks in the MCU-padded plane. */
  blocksPerLine: number;
  blocksPerColumn: number;
  /**
   * Samples per block across and down after the reduced IDCT: 8 / denom, or more for
   * subsampled chroma (below). The plane holds the component at that resolution.
   */
  sizeX: number;
  sizeY: number;
  plane: Uint8Array;
  stride: number;
  pred: number;
}

/** Entropy-coded data reader: removes stuffed zero bytes, stops at the first marker. */
class BitReader {
  buf = 0;
  bits = 0;
  /** Set when the next bytes are a marker: from then on zeros are fed, as libjpeg does. */
  atMarker = false;
  constructor(
    private readonly bytes: Uint8Array,
    public pos: number,
  ) {}

  private fill(): void {
    const bytes = this.bytes;
    while (this.bits <= 24) {
      let b = 0;
      if (!this.atMarker && this.pos < bytes.length) {
        b = bytes[this.pos]!;
        if (b === 0xff) {
          const next = bytes[this.pos + 1];
          if (next === 0x00) this.pos += 2;
          else {
            // A marker (RSTn, EOI, ...): leave pos on it for the caller.
            this.atMarker = true;
            b = 0;
          }
        } else this.pos++;
      }
      // Bits above `this.bits` are stale; shifting pushes them out of the 32-bit word.
      this.buf = (this.buf << 8) | b;
      this.bits += 8;
    }
  }

  bitsOf(n: number): number {
    if (this.bits < n) this.fill();
    this.bits -= n;
    return (this.buf >>> this.bits) & ((1 << n) - 1);
  }

  huffman(lookup: Uint32Array): number {
    if (this.bits < 16) this.fill();
    const entry = lookup[(this.buf >>> (this.bits - 16)) & 0xffff]!;
    if (entry === 0) throw new Unsupported('bad Huffman code');
    this.bits -= entry >>> 8;
    return entry & 0xff;
  }

  /** T.81 F.2.2.1 RECEIVE + EXTEND. */
  receiveExtend(s: number): number {
    if (s === 0) return 0;
    if (s > 16) throw new Unsupported('bad magnitude category');
    const v = this.bitsOf(s);
    return v < 1 << (s - 1) ? v - (1 << s) + 1 : v;
  }

  /** Drops the buffered bits and consumes the RSTn marker expected at a restart boundary. */
  restart(): void {
    this.buf = 0;
    this.bits = 0;
    this.atMarker = false;
    const bytes = this.bytes;
    let p = this.pos;
    while (p < bytes.length && bytes[p] === 0xff && bytes[p + 1] === 0xff) p++; // fill bytes
    if (bytes[p] !== 0xff || (bytes[p + 1]! & 0xf8) !== 0xd0) throw new Unsupported('missing restart marker');
    this.pos = p + 2;
  }
}

// ---- inverse DCTs: input is dequantized coefficients in natural order; each writes an
// S x S block of samples (level-shifted by +128 and clamped) into `out` at `o`, row stride `stride`.

const clamp8 = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);

/** Full 8x8: separable float IDCT (T.81 A.3.3), rounded. Accurate; used for denom 1 only. */
const COS_TABLE = (() => {
  const t = new Float64Array(64);
  for (let x = 0; x < 8; x++) {
    for (let u = 0; u < 8; u++) {
      t[x * 8 + u] = (u === 0 ? Math.SQRT1_2 : 1) * 0.5 * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
    }
  }
  return t;
})();
const idctTmp = new Float64Array(64);
function idct8x8(c: Int32Array, out: Uint8Array, o: number, stride: number): void {
  // Columns: tmp[y][u] = sum_v C(v) c[v][u] cos(...). Most columns of a photo's block are
  // all zero (quantization), so they are skipped: ~3x faster on photos.
  for (let u = 0; u < 8; u++) {
    if (c[u] === 0 && c[8 + u] === 0 && c[16 + u] === 0 && c[24 + u] === 0 && c[32 + u] === 0 && c[40 + u] === 0 && c[48 + u] === 0 && c[56 + u] === 0) {
      for (let y = 0; y < 8; y++) idctTmp[y * 8 + u] = 0;
      continue;
    }
    for (let y = 0; y < 8; y++) {
      let s = 0;
      for (let v = 0; v < 8; v++) s += COS_TABLE[y * 8 + v]! * c[v * 8 + u]!;
      idctTmp[y * 8 + u] = s;
    }
  }
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 8; x++) {
      let s = 0;
      for (let u = 0; u < 8; u++) s += COS_TABLE[x * 8 + u]! * idctTmp[y * 8 + u]!;
      out[o + y * stride + x] = clamp8(Math.round(s) + 128);
    }
  }
}

/**
 * Rectangular reduced IDCT (sx wide, sy tall, each 1, 2, 4 or 8), for chroma subsampled by
 * different factors across and down (4:2:2, 4:4:0, 4:1:1), which jidctred.c's square kernels
 * cannot serve. Each output is the exact mean of the full IDCT's outputs over its
 * (8/sx) x (8/sy) cell, which is what the square kernels approximate in fixed point; float,
 * separable, one matrix per size.
 */
const MEAN_IDCT: Record<number, Float64Array> = Object.fromEntries(
  [1, 2, 4, 8].map((n) => {
    const m = new Float64Array(n * 8);
    const group = 8 / n;
    for (let x = 0; x < n; x++) {
      for (let u = 0; u < 8; u++) {
        let sum = 0;
        for (let k = x * group; k < (x + 1) * group; k++) sum += COS_TABLE[k * 8 + u]!;
        m[x * 8 + u] = sum / group;
      }
    }
    return [n, m];
  }),
);
function idctRect(c: Int32Array, out: Uint8Array, o: number, stride: number, sx: number, sy: number): void {
  const mx = MEAN_IDCT[sx]!;
  const my = MEAN_IDCT[sy]!;
  for (let u = 0; u < 8; u++) {
    for (let y = 0; y < sy; y++) {
      let sum = 0;
      for (let v = 0; v < 8; v++) sum += my[y * 8 + v]! * c[v * 8 + u]!;
      idctTmp[y * 8 + u] = sum;
    }
  }
  for (let y = 0; y < sy; y++) {
    for (let x = 0; x < sx; x++) {
      let sum = 0;
      for (let u = 0; u < 8; u++) sum += mx[x * 8 + u]! * idctTmp[y * 8 + u]!;
      out[o + y * stride + x] = clamp8(Math.round(sum) + 128);
    }
  }
}

// jidctred.c's fixed point: CONST_BITS 13, PASS1_BITS 2, FIX(x) = round(x * 2^13).
const CONST_BITS = 13;
const PASS1_BITS = 2;
const FIX = (x: number): number => Math.round(x * (1 << CONST_BITS));
const FIX_0_211164243 = FIX(0.211164243);
const FIX_0_509795579 = FIX(0.509795579);
const FIX_0_601344887 = FIX(0.601344887);
const FIX_0_720959822 = FIX(0.720959822);
const FIX_0_765366865 = FIX(0.765366865);
const FIX_0_850430095 = FIX(0.850430095);
const FIX_0_899976223 = FIX(0.899976223);
const FIX_1_061594337 = FIX(1.061594337);
const FIX_1_272758580 = FIX(1.27275858);
const FIX_1_451774981 = FIX(1.451774981);
const FIX_1_847759065 = FIX(1.847759065);
const FIX_2_172734803 = FIX(2.172734803);
const FIX_2_562915447 = FIX(2.562915447);
const FIX_3_624509785 = FIX(3.624509785);
/** DESCALE: arithmetic right shift with rounding. Values stay well inside int32 for 8-bit data. */
const descale = (x: number, n: number): number => (x + (1 << (n - 1))) >> n;

const ws4 = new Int32Array(32);
/** jpeg_idct_4x4: each output is the average of two adjacent 8-point outputs; row/column 4 unused. */
function idct4x4(c: Int32Array, out: Uint8Array, o: number, stride: number): void {
  for (let col = 0; col < 8; col++) {
    if (col === 4) continue; // pass 2 never reads column 4
    const z0 = c[col]!;
    if (c[8 + col] === 0 && c[16 + col] === 0 && c[24 + col] === 0 && c[40 + col] === 0 && c[48 + col] === 0 && c[56 + col] === 0) {
      const dc = z0 << PASS1_BITS;
      ws4[col] = dc;
      ws4[8 + col] = dc;
      ws4[16 + col] = dc;
      ws4[24 + col] = dc;
      continue;
    }
    let tmp0 = z0 * (1 << (CONST_BITS + 1));
    let tmp2 = c[16 + col]! * FIX_1_847759065 - c[48 + col]! * FIX_0_765366865;
    const tmp10 = tmp0 + tmp2;
    const tmp12 = tmp0 - tmp2;
    const z1 = c[56 + col]!;
    const z2 = c[40 + col]!;
    const z3 = c[24 + col]!;
    const z4 = c[8 + col]!;
    tmp0 = -z1 * FIX_0_211164243 + z2 * FIX_1_451774981 - z3 * FIX_2_172734803 + z4 * FIX_1_061594337;
    tmp2 = -z1 * FIX_0_509795579 - z2 * FIX_0_601344887 + z3 * FIX_0_899976223 + z4 * FIX_2_562915447;
    const sh = CONST_BITS - PASS1_BITS + 1;
    ws4[col] = descale(tmp10 + tmp2, sh);
    ws4[24 + col] = descale(tmp10 - tmp2, sh);
    ws4[8 + col] = descale(tmp12 + tmp0, sh);
    ws4[16 + col] = descale(tmp12 - tmp0, sh);
  }
  for (let r = 0; r < 4; r++) {
    const w = r * 8;
    const p = o + r * stride;
    if (ws4[w + 1] === 0 && ws4[w + 2] === 0 && ws4[w + 3] === 0 && ws4[w + 5] === 0 && ws4[w + 6] === 0 && ws4[w + 7] === 0) {
      const dc = clamp8(descale(ws4[w]!, PASS1_BITS + 3) + 128);
      out[p] = dc;
      out[p + 1] = dc;
      out[p + 2] = dc;
      out[p + 3] = dc;
      continue;
    }
    const tmp0a = ws4[w]! * (1 << (CONST_BITS + 1));
    const tmp2a = ws4[w + 2]! * FIX_1_847759065 - ws4[w + 6]! * FIX_0_765366865;
    const tmp10 = tmp0a + tmp2a;
    const tmp12 = tmp0a - tmp2a;
    const z1 = ws4[w + 7]!;
    const z2 = ws4[w + 5]!;
    const z3 = ws4[w + 3]!;
    const z4 = ws4[w + 1]!;
    const tmp0 = -z1 * FIX_0_211164243 + z2 * FIX_1_451774981 - z3 * FIX_2_172734803 + z4 * FIX_1_061594337;
    const tmp2 = -z1 * FIX_0_509795579 - z2 * FIX_0_601344887 + z3 * FIX_0_899976223 + z4 * FIX_2_562915447;
    const sh = CONST_BITS + PASS1_BITS + 3 + 1;
    out[p] = clamp8(descale(tmp10 + tmp2, sh) + 128);
    out[p + 3] = clamp8(descale(tmp10 - tmp2, sh) + 128);
    out[p + 1] = clamp8(descale(tmp12 + tmp0, sh) + 128);
    out[p + 2] = clamp8(descale(tmp12 - tmp0, sh) + 128);
  }
}

const ws2 = new Int32Array(16);
/** jpeg_idct_2x2: averages of four adjacent outputs; only DC and odd coefficients matter. */
function idct2x2(c: Int32Array, out: Uint8Array, o: number, stride: number): void {
  for (let col = 0; col < 8; col++) {
    if (col === 2 || col === 4 || col === 6) continue; // pass 2 reads columns 0,1,3,5,7 only
    if (c[8 + col] === 0 && c[24 + col] === 0 && c[40 + col] === 0 && c[56 + col] === 0) {
      const dc = c[col]! << PASS1_BITS;
      ws2[col] = dc;
      ws2[8 + col] = dc;
      continue;
    }
    const tmp10 = c[col]! * (1 << (CONST_BITS + 2));
    const tmp0 =
      -c[56 + col]! * FIX_0_720959822 + c[40 + col]! * FIX_0_850430095 - c[24 + col]! * FIX_1_272758580 + c[8 + col]! * FIX_3_624509785;
    const sh = CONST_BITS - PASS1_BITS + 2;
    ws2[col] = descale(tmp10 + tmp0, sh);
    ws2[8 + col] = descale(tmp10 - tmp0, sh);
  }
  for (let r = 0; r < 2; r++) {
    const w = r * 8;
    const p = o + r * stride;
    if (ws2[w + 1] === 0 && ws2[w + 3] === 0 && ws2[w + 5] === 0 && ws2[w + 7] === 0) {
      const dc = clamp8(descale(ws2[w]!, PASS1_BITS + 3) + 128);
      out[p] = dc;
      out[p + 1] = dc;
      continue;
    }
    const tmp10 = ws2[w]! * (1 << (CONST_BITS + 2));
    const tmp0 = -ws2[w + 7]! * FIX_0_720959822 + ws2[w + 5]! * FIX_0_850430095 - ws2[w + 3]! * FIX_1_272758580 + ws2[w + 1]! * FIX_3_624509785;
    const sh = CONST_BITS + PASS1_BITS + 3 + 2;
    out[p] = clamp8(descale(tmp10 + tmp0, sh) + 128);
    out[p + 1] = clamp8(descale(tmp10 - tmp0, sh) + 128);
  }
}

/** jpeg_idct_1x1: the block mean, DC / 8. */
function idct1x1(c: Int32Array, out: Uint8Array, o: number): void {
  out[o] = clamp8(descale(c[0]!, 3) + 128);
}

/**
 * Decodes `bytes` (baseline, `header` = readJpegHeader(bytes)) at 1/denom scale:
 * ceil(width / denom) x ceil(height / denom), as stored (EXIF orientation not applied).
 * Undefined for anything outside the scope above, including corrupt data: the caller then
 * uses jpeg-js, which decodes it or reports the defect in the usual way.
 */
export function decodeJpegScaled(bytes: Uint8Array, header: JpegHeader, denom: JpegScale): RgbImage | undefined {
  if (header.sof !== 0xc0 && header.sof !== 0xc1) return undefined;
  if (header.precision !== 8) return undefined;
  if (header.components !== 1 && header.components !== 3) return undefined;
  // Three components as RGB (Adobe transform 0, or 'R','G','B' ids): rare; jpeg-js handles it.
  if (header.rgb) return undefined;
  if (header.adobeTransform !== null && header.adobeTransform !== 1 && header.components === 3) return undefined;
  // Truncated files get jpeg.ts's 422 through the fallback, not a zero-padded picture.
  if (!jpegReachesEoi(bytes, header.scanStart)) return undefined;
  try {
    return decode(bytes, denom);
  } catch (err) {
    if (err instanceof Unsupported || err instanceof RangeError) return undefined;
    throw err;
  }
}

function decode(bytes: Uint8Array, denom: JpegScale): RgbImage {
  const quantTables: (Int32Array | undefined)[] = [];
  const dcTables: (Uint32Array | undefined)[] = [];
  const acTables: (Uint32Array | undefined)[] = [];
  let restartInterval = 0;
  let width = 0;
  let height = 0;
  let maxH = 1;
  let maxV = 1;
  let mcusX = 0;
  let mcusY = 0;
  const comps: FrameComponent[] = [];
  const S = 8 / denom; // samples per block side after the reduced IDCT
  let sawScan = false;

  let pos = 2;
  for (;;) {
    if (pos >= bytes.length || bytes[pos] !== 0xff) throw new Unsupported('no marker');
    while (bytes[pos] === 0xff) pos++;
    const code = bytes[pos++];
    if (code === undefined) throw new Unsupported('no marker');
    if (code === 0xd9) break; // EOI
    if ((code >= 0xd0 && code <= 0xd7) || code === 0x01) continue;
    const segStart = pos + 2;
    const segEnd = pos + u16(bytes, pos);
    if (segEnd > bytes.length) throw new Unsupported('segment past end');
    const seg = bytes.subarray(segStart, segEnd);
    pos = segEnd;

    if (code === 0xdb) {
      // DQT: 8- or 16-bit entries (16-bit is legal in SOF1 even with 8-bit samples).
      for (let i = 0; i < seg.length; ) {
        const pq = seg[i]! >> 4;
        const tq = seg[i]! & 15;
        i++;
        const table = new Int32Array(64);
        for (let k = 0; k < 64; k++) {
          table[ZIGZAG[k]!] = pq ? u16(seg, i + 2 * k) : seg[i + k]!;
        }
        i += pq ? 128 : 64;
        if (i > seg.length || tq > 3) throw new Unsupported('bad DQT');
        quantTables[tq] = table;
      }
    } else if (code === 0xc4) {
      for (let i = 0; i < seg.length; ) {
        const tc = seg[i]! >> 4;
        const th = seg[i]! & 15;
        const counts = seg.subarray(i + 1, i + 17);
        let total = 0;
        for (const n of counts) total += n;
        const symbols = seg.subarray(i + 17, i + 17 + total);
        i += 17 + total;
        if (i > seg.length || th > 3 || tc > 1) throw new Unsupported('bad DHT');
        (tc === 0 ? dcTables : acTables)[th] = buildHuffman(counts, symbols);
      }
    } else if (code === 0xdd) {
      restartInterval = u16(seg, 0);
    } else if (code === 0xc0 || code === 0xc1) {
      height = u16(seg, 1);
      width = u16(seg, 3);
      const n = seg[5]!;
      for (let i = 0; i < n; i++) {
        const h = seg[7 + 3 * i]! >> 4;
        const v = seg[7 + 3 * i]! & 15;
        if (h < 1 || h > 4 || v < 1 || v > 4) throw new Unsupported('bad sampling factors');
        comps.push({ id: seg[6 + 3 * i]!, h, v, tq: seg[8 + 3 * i]!, quant: null, blocksPerLine: 0, blocksPerColumn: 0, sizeX: S, sizeY: S, plane: new Uint8Array(0), stride: 0, pred: 0 });
        maxH = Math.max(maxH, h);
        maxV = Math.max(maxV, v);
      }
      mcusX = Math.ceil(width / (8 * maxH));
      mcusY = Math.ceil(height / (8 * maxV));
      for (const c of comps) {
        c.blocksPerLine = mcusX * c.h;
        c.blocksPerColumn = mcusY * c.v;
        // As libjpeg (jdmaster.c) does: a subsampled component gets a larger IDCT instead of
        // upsampling, e.g. 4:2:0 chroma at 1/8 uses the 2x2 IDCT, so it comes out at the
        // luma's resolution and keeps its own detail. Without this, 4:2:0 chroma at 1/8 would
        // be a 16x16 mean, replicated (measured: 2-3 levels worse on photos). Capped at 8
        // (at 1/1 chroma is replicated, as jpeg-js does); odd ratios (3:4) keep replication.
        const fh = maxH / c.h;
        const fv = maxV / c.v;
        if (Number.isInteger(fh)) c.sizeX = Math.min(8, S * fh);
        if (Number.isInteger(fv)) c.sizeY = Math.min(8, S * fv);
        c.stride = c.blocksPerLine * c.sizeX;
        c.plane = new Uint8Array(c.stride * c.blocksPerColumn * c.sizeY);
      }
    } else if (code >= 0xc2 && code <= 0xcf && code !== 0xc4 && code !== 0xc8 && code !== 0xcc) {
      throw new Unsupported('not baseline');
    } else if (code === 0xda) {
      if (comps.length === 0) throw new Unsupported('scan before frame');
      const ns = seg[0]!;
      const scanComps: { comp: FrameComponent; dc: Uint32Array; ac: Uint32Array }[] = [];
      for (let i = 0; i < ns; i++) {
        const comp = comps.find((c) => c.id === seg[1 + 2 * i]);
        const dc = dcTables[seg[2 + 2 * i]! >> 4];
        const ac = acTables[seg[2 + 2 * i]! & 15];
        if (!comp || !dc || !ac) throw new Unsupported('bad scan header');
        // Tables in force when the component's first scan starts (T.81 B.2.4.1).
        comp.quant ??= quantTables[comp.tq] ?? null;
        if (!comp.quant) throw new Unsupported('missing quantization table');
        scanComps.push({ comp, dc, ac });
      }
      const reader = new BitReader(bytes, segEnd);
      decodeScan(reader, scanComps, restartInterval, width, height, maxH, maxV, mcusX, mcusY);
      sawScan = true;
      // Resume the marker walk at the marker that ended the entropy-coded data.
      pos = reader.pos;
      while (pos + 1 < bytes.length && !(bytes[pos] === 0xff && bytes[pos + 1] !== 0x00 && (bytes[pos + 1]! & 0xf8) !== 0xd0)) pos++;
    }
    // APPn, COM and anything else carry nothing we need.
  }
  if (!sawScan) throw new Unsupported('no scan');
  for (const c of comps) if (!c.quant) throw new Unsupported('component never scanned');
  return toRgb(comps, width, height, maxH, maxV, denom);
}

function decodeScan(
  reader: BitReader,
  scanComps: { comp: FrameComponent; dc: Uint32Array; ac: Uint32Array }[],
  restartInterval: number,
  width: number,
  height: number,
  maxH: number,
  maxV: number,
  mcusX: number,
  mcusY: number,
): void {
  const coef = new Int32Array(64);

  const decodeBlock = (comp: FrameComponent, dc: Uint32Array, ac: Uint32Array, row: number, col: number): void => {
    const q = comp.quant!;
    const sx = comp.sizeX;
    const sy = comp.sizeY;
    // For a 1x1 output only the DC survives; AC values are read to move past them, never stored.
    const needAc = sx !== 1 || sy !== 1;
    const t = reader.huffman(dc);
    comp.pred += reader.receiveExtend(t);
    if (needAc) coef.fill(0);
    coef[0] = comp.pred * q[0]!;
    for (let k = 1; k < 64; ) {
      const rs = reader.huffman(ac);
      const s = rs & 15;
      const r = rs >> 4;
      if (s === 0) {
        if (r !== 15) break; // EOB
        k += 16;
        continue;
      }
      k += r;
      if (k > 63) throw new Unsupported('coefficient index past 63');
      const value = reader.receiveExtend(s);
      if (needAc) {
        const z = ZIGZAG[k]!;
        coef[z] = value * q[z]!;
      }
      k++;
    }
    // Blocks of the MCU padding past the plane are still decoded (their bits must be read).
    if (row >= comp.blocksPerColumn || col >= comp.blocksPerLine) return;
    const o = row * sy * comp.stride + col * sx;
    if (sx !== sy) idctRect(coef, comp.plane, o, comp.stride, sx, sy);
    else if (sx === 1) idct1x1(coef, comp.plane, o);
    else if (sx === 2) idct2x2(coef, comp.plane, o, comp.stride);
    else if (sx === 4) idct4x4(coef, comp.plane, o, comp.stride);
    else idct8x8(coef, comp.plane, o, comp.stride);
  };

  for (const { comp } of scanComps) comp.pred = 0;
  let sinceRestart = 0;
  const restartIfDue = (): void => {
    if (restartInterval === 0) return;
    if (sinceRestart === restartInterval) {
      reader.restart();
      for (const { comp } of scanComps) comp.pred = 0;
      sinceRestart = 0;
    }
    sinceRestart++;
  };

  if (scanComps.length === 1) {
    // Non-interleaved: one block per MCU, over the component's own (unpadded) block grid.
    const { comp, dc, ac } = scanComps[0]!;
    const bx = Math.ceil(Math.ceil((width * comp.h) / maxH) / 8);
    const by = Math.ceil(Math.ceil((height * comp.v) / maxV) / 8);
    for (let row = 0; row < by; row++) {
      for (let col = 0; col < bx; col++) {
        restartIfDue();
        decodeBlock(comp, dc, ac, row, col);
      }
    }
  } else {
    for (let my = 0; my < mcusY; my++) {
      for (let mx = 0; mx < mcusX; mx++) {
        restartIfDue();
        for (const { comp, dc, ac } of scanComps) {
          for (let v = 0; v < comp.v; v++) {
            for (let h = 0; h < comp.h; h++) decodeBlock(comp, dc, ac, my * comp.v + v, mx * comp.h + h);
          }
        }
      }
    }
  }
}

/**
 * Planes -> interleaved RGB at ceil(size / denom). A plane at a lower resolution than the
 * output (chroma at 1/1, 4:1:1 chroma at 1/2) is replicated, as jpeg-js does.
 */
function toRgb(comps: FrameComponent[], width: number, height: number, maxH: number, maxV: number, denom: JpegScale): RgbImage {
  const outW = Math.ceil(width / denom);
  const outH = Math.ceil(height / denom);
  const data = new Uint8Array(outW * outH * 3);
  // Output pixel x is full-resolution column x * denom, the component's sample
  // x * denom * h / maxH, which the plane holds at size / 8 of that: exact integers ratios.
  const S = 8 / denom;
  const colIndex = comps.map((c) => Int32Array.from({ length: outW }, (_, x) => Math.floor((x * c.h * c.sizeX) / (maxH * S))));
  const rowOf = (c: FrameComponent, y: number): number => Math.floor((y * c.v * c.sizeY) / (maxV * S)) * c.stride;
  let o = 0;
  if (comps.length === 1) {
    const c = comps[0]!;
    const xs = colIndex[0]!;
    for (let y = 0; y < outH; y++) {
      const r = rowOf(c, y);
      for (let x = 0; x < outW; x++) {
        const g = c.plane[r + xs[x]!]!;
        data[o++] = g;
        data[o++] = g;
        data[o++] = g;
      }
    }
    return { width: outW, height: outH, data };
  }
  const [cy, cb, cr] = comps as [FrameComponent, FrameComponent, FrameComponent];
  const [xy, xb, xr] = colIndex as [Int32Array, Int32Array, Int32Array];
  for (let y = 0; y < outH; y++) {
    const ry = rowOf(cy, y);
    const rb = rowOf(cb, y);
    const rr = rowOf(cr, y);
    for (let x = 0; x < outW; x++) {
      const Y = cy.plane[ry + xy[x]!]!;
      const Cb = cb.plane[rb + xb[x]!]! - 128;
      const Cr = cr.plane[rr + xr[x]!]! - 128;
      // jpeg-js's constants; the Uint8Array store truncates, as in jpeg-js.
      data[o++] = clamp8(Y + 1.402 * Cr);
      data[o++] = clamp8(Y - 0.3441363 * Cb - 0.71413636 * Cr);
      data[o++] = clamp8(Y + 1.772 * Cb);
    }
  }
  return { width: outW, height: outH, data };
}
