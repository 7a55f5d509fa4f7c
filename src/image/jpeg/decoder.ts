/**
 * The decoding pipeline: libjpeg's marker reader (jdmarker.c), entropy decoders (jdhuff.c,
 * jdphuff.c, and jdarith.c's in ./arith.ts), IDCT, upsampling and colour conversion, with the output streamed to a RowSink
 * one iMCU row (8 * max v-sampling rows at full scale) at a time.
 *
 * Two modes, as libjpeg has: a file whose first scan holds every component (baseline and
 * extended sequential, the common case) is decoded while it is read and never held whole;
 * anything else (progressive, or sequential with one scan per component) keeps quantized
 * coefficients until the last scan, then runs the same output stage. At reduced scale the
 * coefficients the reduced IDCT never reads are not stored (a bitmap remembers which are
 * nonzero, which successive-approximation refinement scans need to parse).
 */
import { tooLarge, unprocessableImage } from '../../errors';
import { BitReader, buildHuffman, HUFFMAN_TABLE_BYTES, nextMarker, type HuffmanSpec, type HuffmanTable } from './bits';
import { acFirstScan, acRefineScan, decodeBlockFast } from './entropy';
import { ARITH_TABLES, ArithScan, defaultConditioning, type ArithConditioning } from './arith';
import { idctCorner, idctIslow, idctReduced, neededCoefficients, reducedMatrix, type ReducedKernel } from './idct';
import { cmykToRgb, grayToRgb, planesToRgb, ycbcrToRgb, ycckToRgb } from './color';
import { FULL, H1V2, H2V1, H2V2, h1v2, h2v1, h2v2, replicate, upsampleMethod } from './upsample';
import type { RowSink } from '../types';

/** Zig-zag position -> natural index, with jpeg_natural_order's 16 extra entries: a corrupt run past 63 lands on 63. */
const NATURAL = Uint8Array.from([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35,
  42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62,
  63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
]);

const corrupt = (what: string) => unprocessableImage(`corrupt JPEG: ${what}`);
/** SOF2 (Huffman) and SOF10 (arithmetic) are progressive; SOF9 and SOF10 are arithmetic-coded. */
export const isProgressive = (sof: number): boolean => sof === 0xc2 || sof === 0xca;
export const isArithmetic = (sof: number): boolean => sof === 0xc9 || sof === 0xca;
const u16 = (b: Uint8Array, i: number): number => (b[i]! << 8) | b[i + 1]!;

export interface FrameComponent {
  id: number;
  h: number;
  v: number;
  tq: number;
}

export interface Frame {
  sof: number;
  width: number;
  height: number;
  comps: FrameComponent[];
}

export type ColorModel = 'gray' | 'ycbcr' | 'rgb' | 'cmyk' | 'ycck';

/** Sizes the output stage derives from the frame and scale, shared with the memory bound. */
export interface Layout {
  maxH: number;
  maxV: number;
  /** IDCT output size of the luma-like (largest sampling) components: 8 / scale. */
  minS: number;
  mcusX: number;
  mcusY: number;
  outW: number;
  outH: number;
  comps: CompLayout[];
}

export interface CompLayout {
  bw: number;
  bh: number;
  /** Blocks the component really has, the grid of its non-interleaved scans. */
  rbw: number;
  rbh: number;
  sx: number;
  sy: number;
  planeW: number;
  planeH: number;
  hexp: number;
  vexp: number;
  method: number;
}

const ceilDiv = (a: number, b: number): number => Math.floor((a + b - 1) / b);

/**
 * jdmaster.c's sizes. At reduced scale a subsampled component gets a larger IDCT instead of
 * upsampling, doubling while both its ratios allow (as libjpeg does, except that across and
 * down are doubled separately: 4:2:2 chroma at 1/2 comes out 8x4 and needs no upsampling).
 */
export function layoutOf(frame: Pick<Frame, 'width' | 'height' | 'comps'>, scale: number): Layout {
  const { width: W, height: H } = frame;
  let maxH = 1;
  let maxV = 1;
  for (const c of frame.comps) {
    maxH = Math.max(maxH, c.h);
    maxV = Math.max(maxV, c.v);
  }
  const minS = 8 / scale;
  const mcusX = ceilDiv(W, 8 * maxH);
  const mcusY = ceilDiv(H, 8 * maxV);
  const comps = frame.comps.map((c): CompLayout => {
    let sx = minS;
    let sy = minS;
    if (scale === 1) {
      // Full scale: libjpeg's own rule (both ratios must allow), which keeps sx = sy = 8.
    } else {
      while (sx < 8 && (maxH * minS) % (c.h * sx * 2) === 0) sx *= 2;
      while (sy < 8 && (maxV * minS) % (c.v * sy * 2) === 0) sy *= 2;
    }
    const planeW = ceilDiv(W * c.h * sx, maxH * 8);
    const planeH = ceilDiv(H * c.v * sy, maxV * 8);
    const hIn = c.h * sx;
    const vIn = c.v * sy;
    const hOut = maxH * minS;
    const vOut = maxV * minS;
    if (hOut % hIn !== 0 || vOut % vIn !== 0) throw unprocessableImage('JPEG with fractional sampling ratios is not supported');
    const hexp = hOut / hIn;
    const vexp = vOut / vIn;
    return {
      bw: mcusX * c.h,
      bh: mcusY * c.v,
      rbw: ceilDiv(W * c.h, maxH * 8),
      rbh: ceilDiv(H * c.v, maxV * 8),
      sx,
      sy,
      planeW,
      planeH,
      hexp,
      vexp,
      method: upsampleMethod(hexp, vexp, planeW),
    };
  });
  return { maxH, maxV, minS, mcusX, mcusY, outW: ceilDiv(W * minS, 8), outH: ceilDiv(H * minS, 8), comps };
}

/** Natural indexes the reduced kernel reads for a component (all 64 at full size). */
export function keptCoefficients(kernel: ReducedKernel, sx: number, sy: number): number[] {
  if (sx === 8 && sy === 8) return Array.from({ length: 64 }, (_, i) => i);
  return neededCoefficients(reducedMatrix(kernel, sx), reducedMatrix(kernel, sy), sx, sy);
}

/** Bytes allocated by the decoder for this frame; `buffered`: coefficients kept for all blocks. */
export function memoryOf(frame: Pick<Frame, 'width' | 'height' | 'comps'>, scale: number, buffered: boolean, progressive: boolean, kernel: ReducedKernel): number {
  const L = layoutOf(frame, scale);
  let bytes = 64 * 1024; // scratch, per-call objects
  bytes += 8 * HUFFMAN_TABLE_BYTES; // a scan's DC and AC tables, up to 4 components
  bytes += L.outW * 3 * L.maxV * L.minS; // RGB strip
  L.comps.forEach((c, i) => {
    const stride = c.bw * c.sx;
    bytes += 2 * stride * frame.comps[i]!.v * c.sy + stride; // two strips and the saved row above
    bytes += L.outW + 2 * c.planeW + 64; // upsampled row
    if (buffered) {
      const k = keptCoefficients(kernel, c.sx, c.sy).length;
      bytes += c.bw * c.bh * k * 2;
      if (progressive) bytes += c.bw * c.bh * 8; // nonzero map
    }
  });
  return bytes;
}

interface Comp extends FrameComponent, CompLayout {
  index: number;
  quant: Int32Array | null;
  stride: number;
  stripRows: number;
  strips: [Uint8Array, Uint8Array];
  above: Uint8Array;
  row: Uint8Array;
  mx: Float64Array | null;
  my: Float64Array | null;
  /** Reduced 'lowfreq': the kept coefficients are the sx x sy corner (idctCorner). */
  corner: boolean;
  /** Natural index -> slot in the block's stored coefficients, -1 when not stored. */
  slots: Int8Array;
  /** The same by zig-zag position (80 entries: a corrupt run past 63 lands on 63, as in NATURAL). */
  zslot: Int8Array;
  kept: number;
  coefs: Int16Array | null;
  nz: Uint32Array | null;
  pred: number;
}

interface ScanComp {
  comp: Comp;
  /** Position in the scan header (the arithmetic decoder's per-component state). */
  si: number;
  dc: HuffmanTable | null;
  ac: HuffmanTable | null;
}

export interface DecodeOptions {
  scale: 1 | 2 | 4 | 8;
  kernel: ReducedKernel;
  maxMemoryBytes: number;
  /** Called with the bytes about to be allocated (tests check them against the bound). */
  onAllocate?: (bytes: number) => void;
  /**
   * Where the whole image goes when the caller collects it (outW * outH * 3 bytes): rows are
   * converted straight into it, saving a copy; the sink still sees each strip (as a view).
   */
  target?: () => Uint8Array;
}

/** Decodes `bytes` into `sink`; the caller has checked the file reaches EOI. */
export function decodeInto(bytes: Uint8Array, sink: RowSink, opts: DecodeOptions): { width: number; height: number } {
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) throw unprocessableImage('not a JPEG file (no SOI marker)');
  const quant: (Int32Array | undefined)[] = [];
  const dcSpecs: (HuffmanSpec | undefined)[] = [];
  const acSpecs: (HuffmanSpec | undefined)[] = [];
  const tableSlots: TableSlots = [];
  let restartInterval = 0;
  let frame: Frame | null = null;
  let jfif = false;
  let adobe: number | null = null;
  let st: State | null = null;
  // Arithmetic coding: DAC conditioning (SOI's defaults until a DAC segment), and the
  // statistics areas, allocated at the first arithmetic scan and reused by every scan.
  const conditioning: ArithConditioning = defaultConditioning();
  let arithStats: { dc: Uint8Array[]; ac: Uint8Array[] } | null = null;

  let pos = 2;
  for (;;) {
    const m = nextMarker(bytes, pos);
    if (m < 0) {
      if (st && st.buffered) break; // the EOI check passed, so only a corrupt walk gets here
      throw unprocessableImage('JPEG is truncated');
    }
    const code = bytes[m + 1]!;
    pos = m + 2;
    if (code === 0xd9) break; // EOI
    if ((code >= 0xd0 && code <= 0xd7) || code === 0x01) continue; // stray RSTn / TEM: libjpeg ignores them
    if (code === 0xd8) throw corrupt('second SOI marker');
    if (pos + 2 > bytes.length) throw unprocessableImage('JPEG is truncated');
    const length = u16(bytes, pos);
    const segEnd = pos + length;
    if (length < 2 || segEnd > bytes.length) throw corrupt('bad segment length');
    const seg = bytes.subarray(pos + 2, segEnd);
    pos = segEnd;

    if (code === 0xdb) readDqt(seg, quant);
    else if (code === 0xc4) readDht(seg, dcSpecs, acSpecs);
    else if (code === 0xdd) {
      if (seg.length !== 2) throw corrupt('bad DRI length');
      restartInterval = u16(seg, 0);
    } else if (code === 0xe0) {
      if (seg.length >= 14 && seg[0] === 0x4a && seg[1] === 0x46 && seg[2] === 0x49 && seg[3] === 0x46 && seg[4] === 0) jfif = true;
    } else if (code === 0xee) {
      if (seg.length >= 12 && seg[0] === 0x41 && seg[1] === 0x64 && seg[2] === 0x6f && seg[3] === 0x62 && seg[4] === 0x65) adobe = seg[11]!;
    } else if ((code >= 0xe1 && code <= 0xef) || code === 0xfe || code === 0xdc) {
      // APPn, COM, DNL: nothing we need
    } else if (code >= 0xc0 && code <= 0xcf && code !== 0xc4 && code !== 0xc8 && code !== 0xcc) {
      if (frame) throw corrupt('more than one frame header');
      if (code === 0xc3 || code === 0xcb) throw unprocessableImage('lossless JPEG is not supported');
      if (code !== 0xc0 && code !== 0xc1 && code !== 0xc2 && !isArithmetic(code)) throw unprocessableImage('hierarchical JPEG is not supported');
      frame = readSof(code, seg);
    } else if (code === 0xcc) {
      readDac(seg, conditioning);
    } else if (code === 0xda) {
      if (!frame) throw corrupt('scan before the frame header');
      const scan = readSos(seg, frame);
      if (!st) {
        st = setup(frame, colorModelOf(frame, jfif, adobe), scan.ids.length === frame.comps.length && !isProgressive(frame.sof), opts);
      }
      const comps = scan.ids.map((i) => st!.comps[i]!);
      for (const c of comps) {
        if (!c.quant) {
          const q = quant[c.tq];
          if (!q) throw corrupt(`missing quantization table ${c.tq}`);
          c.quant = q.slice();
        }
      }
      const arithmetic = isArithmetic(frame.sof);
      const progressive = isProgressive(frame.sof);
      const sc: ScanComp[] = comps.map((comp, i) => ({
        comp,
        si: i,
        dc: !arithmetic && scan.ss === 0 && scan.ah === 0 ? huffman(dcSpecs, scan.td[i]!, true, tableSlots) : null,
        ac: !arithmetic && (scan.se > 0 || !progressive) ? huffman(acSpecs, scan.ta[i]!, false, tableSlots) : null,
      }));
      if (!progressive && !arithmetic) {
        // Sequential: dc and ac both needed even if the scan says otherwise (jdhuff.c just warns).
        for (let i = 0; i < sc.length; i++) sc[i]!.dc ??= huffman(dcSpecs, scan.td[i]!, true, tableSlots);
      }
      const reader = new BitReader(bytes, pos);
      let arith: ArithScan | null = null;
      if (arithmetic) {
        arithStats ??= {
          dc: Array.from({ length: ARITH_TABLES }, () => new Uint8Array(64)),
          ac: Array.from({ length: ARITH_TABLES }, () => new Uint8Array(256)),
        };
        const usesDc = !progressive || (scan.ss === 0 && scan.ah === 0);
        const usesAc = !progressive || scan.ss > 0;
        arith = new ArithScan(reader, conditioning, scan.td, scan.ta, usesDc, usesAc, arithStats);
      }
      if (!st.buffered) {
        streamScan(st, reader, sc, restartInterval, sink, arith);
        return { width: st.layout.outW, height: st.layout.outH };
      }
      if (progressive) progressiveScan(st, reader, sc, restartInterval, scan, arith);
      else sequentialScan(st, reader, sc, restartInterval, arith);
      const next = reader.endMarker();
      if (next < 0) break;
      pos = next;
    } else {
      throw corrupt(`unknown marker 0x${code.toString(16)}`);
    }
  }
  if (!st) throw unprocessableImage(frame ? 'JPEG has no scan' : 'corrupt JPEG: no frame header');
  outputBuffered(st, sink);
  return { width: st.layout.outW, height: st.layout.outH };
}

function readDqt(seg: Uint8Array, quant: (Int32Array | undefined)[]): void {
  for (let i = 0; i < seg.length; ) {
    const pq = seg[i]! >> 4;
    const tq = seg[i]! & 15;
    i++;
    if (tq > 3) throw corrupt('bad quantization table index');
    const size = pq ? 128 : 64;
    if (i + size > seg.length) throw corrupt('bad DQT length');
    const t = new Int32Array(64);
    for (let k = 0; k < 64; k++) {
      // ISLOW_MULT_TYPE is a short in libjpeg-turbo: 16-bit entries above 32767 go negative.
      t[NATURAL[k]!] = pq ? (u16(seg, i + 2 * k) << 16) >> 16 : seg[i + k]!;
    }
    i += size;
    quant[tq] = t;
  }
}

/** jdmarker.c get_dac: DC bounds L and U (L <= U) for tables 0..15, the AC threshold K for 16..31. */
function readDac(seg: Uint8Array, cond: ArithConditioning): void {
  if (seg.length % 2 !== 0) throw corrupt('bad DAC length');
  for (let i = 0; i < seg.length; i += 2) {
    const index = seg[i]!;
    const value = seg[i + 1]!;
    if (index >= 2 * ARITH_TABLES) throw corrupt('bad arithmetic conditioning table index');
    if (index >= ARITH_TABLES) cond.acK[index - ARITH_TABLES] = value;
    else {
      cond.dcL[index] = value & 15;
      cond.dcU[index] = value >> 4;
      if ((value & 15) > value >> 4) throw corrupt('bad arithmetic DC conditioning');
    }
  }
}

function readDht(seg: Uint8Array, dc: (HuffmanSpec | undefined)[], ac: (HuffmanSpec | undefined)[]): void {
  for (let i = 0; i < seg.length; ) {
    if (i + 17 > seg.length) throw corrupt('bad DHT length');
    let index = seg[i]!;
    const isAc = (index & 0x10) !== 0;
    if (isAc) index -= 0x10;
    if (index > 3) throw corrupt('bad Huffman table index');
    const counts = seg.slice(i + 1, i + 17);
    let total = 0;
    for (const n of counts) total += n;
    if (total > 256 || i + 17 + total > seg.length) throw corrupt('bad Huffman table');
    const symbols = seg.slice(i + 17, i + 17 + total);
    (isAc ? ac : dc)[index] = { counts, symbols };
    i += 17 + total;
  }
}

function readSof(code: number, seg: Uint8Array): Frame {
  if (seg.length < 6) throw corrupt('bad frame header');
  const precision = seg[0]!;
  const height = u16(seg, 1);
  const width = u16(seg, 3);
  const n = seg[5]!;
  if (precision !== 8) throw unprocessableImage(`${precision}-bit JPEG is not supported`);
  if (seg.length !== 6 + 3 * n) throw corrupt('bad frame header length');
  if (width === 0 || height === 0 || n === 0) throw corrupt('empty image');
  if (n !== 1 && n !== 3 && n !== 4) throw unprocessableImage(`JPEG with ${n} components is not supported`);
  const comps: FrameComponent[] = [];
  for (let i = 0; i < n; i++) {
    const h = seg[7 + 3 * i]! >> 4;
    const v = seg[7 + 3 * i]! & 15;
    if (h < 1 || h > 4 || v < 1 || v > 4) throw corrupt('bad sampling factors');
    comps.push({ id: seg[6 + 3 * i]!, h, v, tq: seg[8 + 3 * i]! & 3 });
    if (seg[8 + 3 * i]! > 3) throw corrupt('bad quantization table index');
  }
  return { sof: code, width, height, comps };
}

interface Scan {
  ids: number[];
  td: number[];
  ta: number[];
  ss: number;
  se: number;
  ah: number;
  al: number;
}

function readSos(seg: Uint8Array, frame: Frame): Scan {
  const n = seg[0] ?? 0;
  if (seg.length !== 2 * n + 4 || n < 1 || n > 4) throw corrupt('bad scan header');
  const ids: number[] = [];
  const td: number[] = [];
  const ta: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = seg[1 + 2 * i]!;
    const ci = frame.comps.findIndex((c, k) => c.id === id && !ids.includes(k));
    if (ci < 0) throw corrupt('bad component in scan header');
    ids.push(ci);
    td.push(seg[2 + 2 * i]! >> 4);
    ta.push(seg[2 + 2 * i]! & 15);
  }
  const ss = seg[1 + 2 * n]!;
  const se = seg[2 + 2 * n]!;
  const ah = seg[3 + 2 * n]! >> 4;
  const al = seg[3 + 2 * n]! & 15;
  if (isProgressive(frame.sof)) {
    // jdphuff.c start_pass_phuff_decoder (and jdarith.c's start_pass): these are fatal there.
    let bad = ss === 0 ? se !== 0 : ss > se || se > 63 || n !== 1;
    if (ah !== 0 && al !== ah - 1) bad = true;
    if (al > 13) bad = true;
    if (bad) throw corrupt('bad progressive scan parameters');
  } else {
    let blocks = 0;
    for (const ci of ids) blocks += n === 1 ? 1 : frame.comps[ci]!.h * frame.comps[ci]!.v;
    if (blocks > 10) throw corrupt('too many blocks in an MCU');
  }
  if (n > 1 && isProgressive(frame.sof)) {
    let blocks = 0;
    for (const ci of ids) blocks += frame.comps[ci]!.h * frame.comps[ci]!.v;
    if (blocks > 10) throw corrupt('too many blocks in an MCU');
  }
  return { ids, td, ta, ss, se, ah, al };
}

/** The built tables of one decode: 4 DC then 4 AC slots, each with the spec it was built from. */
type TableSlots = Array<{ spec: HuffmanSpec; table: HuffmanTable } | undefined>;

function huffman(specs: (HuffmanSpec | undefined)[], index: number, isDc: boolean, slots: TableSlots): HuffmanTable {
  if (index > 3) throw corrupt('bad Huffman table index');
  const spec = specs[index] ?? (index < 2 ? STD[isDc ? 0 : 1][index] : undefined);
  if (!spec) throw corrupt(`missing Huffman table ${index}`);
  const slot = (isDc ? 0 : 4) + index;
  const held = slots[slot];
  if (held?.spec === spec) return held.table;
  // A redefined slot is rebuilt into the arrays it had; a failed build leaves the slot empty.
  slots[slot] = undefined;
  const table = buildHuffman(spec, isDc, held?.table);
  slots[slot] = { spec, table };
  return table;
}

/** T.81 K.3 tables, which libjpeg-turbo supplies when a file (Motion-JPEG style) has no DHT. */
const STD: [HuffmanSpec[], HuffmanSpec[]] = (() => {
  const spec = (counts: number[], symbols: number[]): HuffmanSpec => ({ counts: Uint8Array.from(counts), symbols: Uint8Array.from(symbols) });
  const dcLum = spec([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  const dcChr = spec([0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  const acLum = spec([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d], [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08,
    0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
    0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
    0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
  ]);
  const acChr = spec([0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77], [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91,
    0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
    0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58,
    0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
    0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
  ]);
  return [
    [dcLum, dcChr],
    [acLum, acChr],
  ];
})();

/** jdapimin.c default_decompress_parms. */
export function colorModelOf(frame: Frame, jfif: boolean, adobe: number | null): ColorModel {
  const n = frame.comps.length;
  if (n === 1) return 'gray';
  if (n === 3) {
    if (jfif) return 'ycbcr';
    if (adobe !== null) return adobe === 0 ? 'rgb' : 'ycbcr';
    const [a, b, c] = frame.comps.map((x) => x.id);
    return a === 0x52 && b === 0x47 && c === 0x42 ? 'rgb' : 'ycbcr';
  }
  return adobe !== null && adobe !== 0 ? 'ycck' : 'cmyk';
}

interface State {
  frame: Frame;
  layout: Layout;
  color: ColorModel;
  comps: Comp[];
  buffered: boolean;
  progressive: boolean;
  scale: number;
  rgb: Uint8Array;
  /** Scratch block for streaming decode (Int16: coefficients are JCOEF, 16-bit, in libjpeg). */
  block: Int16Array;
  identity: Int8Array;
  target: Uint8Array | null;
}

function setup(frame: Frame, color: ColorModel, singleScan: boolean, opts: DecodeOptions): State {
  const layout = layoutOf(frame, opts.scale);
  const buffered = !singleScan;
  const progressive = isProgressive(frame.sof);
  const need = memoryOf(frame, opts.scale, buffered, progressive, opts.kernel);
  if (need > opts.maxMemoryBytes) {
    throw tooLarge(`JPEG of ${frame.width}x${frame.height} needs ${Math.ceil(need / 2 ** 20)} MiB to decode, over the limit of ${Math.floor(opts.maxMemoryBytes / 2 ** 20)} MiB`);
  }
  opts.onAllocate?.(need);
  const identity = Int8Array.from({ length: 64 }, (_, i) => i);
  const comps = frame.comps.map((fc, index): Comp => {
    const cl = layout.comps[index]!;
    const stride = cl.bw * cl.sx;
    const stripRows = fc.v * cl.sy;
    const full = cl.sx === 8 && cl.sy === 8;
    const mx = full ? null : reducedMatrix(opts.kernel, cl.sx);
    const my = full ? null : reducedMatrix(opts.kernel, cl.sy);
    let slots = identity;
    let kept = 64;
    if (!full) {
      const keep = keptCoefficients(opts.kernel, cl.sx, cl.sy);
      slots = new Int8Array(64).fill(-1);
      keep.forEach((k, i) => (slots[k] = i));
      kept = keep.length;
    }
    return {
      ...fc,
      ...cl,
      index,
      quant: null,
      stride,
      stripRows,
      strips: [new Uint8Array(stride * stripRows), new Uint8Array(stride * stripRows)],
      above: new Uint8Array(stride),
      row: new Uint8Array(layout.outW + 2 * cl.planeW + 64),
      mx,
      my,
      corner: !full && opts.kernel === 'lowfreq',
      slots,
      zslot: Int8Array.from(NATURAL, (z) => slots[z]!),
      kept,
      coefs: buffered ? new Int16Array(cl.bw * cl.bh * kept) : null,
      nz: progressive ? new Uint32Array(cl.bw * cl.bh * 2) : null,
      pred: 0,
    };
  });
  return {
    frame,
    layout,
    color,
    comps,
    buffered,
    progressive,
    scale: opts.scale,
    rgb: new Uint8Array(layout.outW * 3 * layout.maxV * layout.minS),
    block: new Int16Array(64),
    identity,
    target: opts.target ? opts.target() : null,
  };
}

/** Restart bookkeeping shared by all scan decoders (jdhuff.c / jdphuff.c process_restart). */
class Restarts {
  private left: number;
  private next = 0;
  /** libjpeg's out-of-data flag survives a restart that leaves it facing another marker. */
  private stuck = false;
  eobrun = 0;
  constructor(
    private readonly reader: BitReader,
    private readonly interval: number,
    private readonly comps: ScanComp[],
    /** An arithmetic-coded scan: its statistics restart too, and damage (not running out of data) stops its blocks. */
    private readonly arith: ArithScan | null = null,
  ) {
    this.left = interval;
  }

  /** Before each MCU; true when the MCU is to be decoded (else it stays zero). */
  beforeMcu(): boolean {
    if (this.interval !== 0) {
      if (this.left === 0) {
        const was = this.stuck || this.reader.exhausted;
        const ok = this.reader.restart(this.next);
        this.next = (this.next + 1) & 7;
        this.stuck = !ok && was;
        for (const s of this.comps) s.comp.pred = 0;
        this.eobrun = 0;
        this.left = this.interval;
        this.arith?.resetStats();
      }
      this.left--;
    }
    if (this.arith) return this.arith.ok;
    return !this.stuck && !this.reader.exhausted;
  }
}

function idctInto(st: State, comp: Comp, coef: Int16Array, co: number, slots: Int8Array, out: Uint8Array, o: number): void {
  if (comp.mx === null) idctIslow(coef, co, comp.quant!, out, o, comp.stride);
  else if (comp.corner) idctCorner(coef, co, comp.quant!, comp.mx, comp.my!, comp.sx, comp.sy, out, o, comp.stride);
  else idctReduced(coef, co, slots, comp.quant!, comp.mx, comp.my!, comp.sx, comp.sy, out, o, comp.stride);
}

/** The single interleaved scan of a sequential file, decoded and emitted one iMCU row at a time. */
function streamScan(st: State, reader: BitReader, sc: ScanComp[], interval: number, sink: RowSink, arith: ArithScan | null): void {
  const L = st.layout;
  const rs = new Restarts(reader, interval, sc, arith);
  const blk = st.block;
  const single = sc.length === 1;
  for (const s of sc) s.comp.pred = 0;
  for (let my = 0; my < L.mcusY; my++) {
    const slot = (my & 1) as 0 | 1;
    // The slot is about to take strip my over strip my-2, whose last row strip my-1 still needs.
    if (my >= 2) saveAbove(st, slot);
    if (single) {
      const { comp, dc, ac } = sc[0]!;
      for (let by = my * comp.v; by < Math.min((my + 1) * comp.v, comp.rbh); by++) {
        for (let bx = 0; bx < comp.rbw; bx++) {
          for (let i = 0; i < comp.kept; i++) blk[i] = 0; // not fill(): its builtin call costs more, a block
          if (rs.beforeMcu()) {
            if (arith) arithBlock(arith, sc[0]!, blk, 0);
            else comp.pred = decodeBlockFast(reader, dc!, ac!, comp.pred, blk, 0, comp.zslot);
          }
          idctInto(st, comp, blk, 0, comp.slots, comp.strips[slot], (by - my * comp.v) * comp.sy * comp.stride + bx * comp.sx);
        }
      }
    } else {
      for (let mx = 0; mx < L.mcusX; mx++) {
        const go = rs.beforeMcu();
        for (const s of sc) {
          const { comp, dc, ac } = s;
          for (let v = 0; v < comp.v; v++) {
            for (let h = 0; h < comp.h; h++) {
              for (let i = 0; i < comp.kept; i++) blk[i] = 0; // not fill(): its builtin call costs more, a block
              if (go) {
                if (arith) arithBlock(arith, s, blk, 0);
                else comp.pred = decodeBlockFast(reader, dc!, ac!, comp.pred, blk, 0, comp.zslot);
              }
              idctInto(st, comp, blk, 0, comp.slots, comp.strips[slot], v * comp.sy * comp.stride + (mx * comp.h + h) * comp.sx);
            }
          }
        }
      }
    }
    if (my > 0) emitStrip(st, my - 1, sink);
  }
  if (L.mcusY >= 2) saveAbove(st, L.mcusY & 1);
  emitStrip(st, L.mcusY - 1, sink);
}

/** Keeps the last row of the strip in `slot` as the row above the strip emitted next. */
function saveAbove(st: State, slot: number): void {
  for (const c of st.comps) {
    const s = c.strips[slot as 0 | 1];
    c.above.set(s.subarray((c.stripRows - 1) * c.stride, c.stripRows * c.stride));
  }
}

/** Upsamples and colour-converts the output rows of iMCU row `r` and hands them to the sink. */
function emitStrip(st: State, r: number, sink: RowSink): void {
  const L = st.layout;
  const rowsPer = L.maxV * L.minS;
  const y0 = r * rowsPer;
  const y1 = Math.min(L.outH, y0 + rowsPer);
  if (y1 <= y0) return;
  const outW = L.outW;
  const comps = st.comps;
  const n = comps.length;
  const bufs: Uint8Array[] = new Array<Uint8Array>(n);
  const offs: number[] = new Array<number>(n).fill(0);
  let refBuf: Uint8Array = comps[0]!.above;
  let refOff = 0;
  const rowRef = (c: Comp, cy: number): void => {
    const base = r * c.stripRows;
    if (cy < base) {
      refBuf = c.above;
      refOff = 0;
    } else if (cy < base + c.stripRows) {
      refBuf = c.strips[(r & 1) as 0 | 1];
      refOff = (cy - base) * c.stride;
    } else {
      refBuf = c.strips[((r + 1) & 1) as 0 | 1];
      refOff = (cy - base - c.stripRows) * c.stride;
    }
  };
  const rgb = st.target ? st.target.subarray(y0 * outW * 3, y1 * outW * 3) : st.rgb;
  for (let oy = y0; oy < y1; oy++) {
    for (let i = 0; i < n; i++) {
      const c = comps[i]!;
      const cy = c.vexp === 1 ? oy : Math.floor(oy / c.vexp);
      const m = c.method;
      if (m === FULL) {
        rowRef(c, cy);
        bufs[i] = refBuf;
        offs[i] = refOff;
        continue;
      }
      if (m === H2V2 || m === H1V2) {
        const below = (oy & 1) === 1;
        let fy = below ? cy + 1 : cy - 1;
        if (fy < 0) fy = 0;
        if (fy > c.planeH - 1) fy = c.planeH - 1;
        rowRef(c, cy);
        const nb = refBuf;
        const no = refOff;
        rowRef(c, fy);
        if (m === H2V2) h2v2(nb, no, refBuf, refOff, c.planeW, c.row);
        else h1v2(nb, no, refBuf, refOff, c.planeW, below, c.row);
      } else {
        rowRef(c, cy);
        if (m === H2V1) h2v1(refBuf, refOff, c.planeW, c.row);
        else replicate(refBuf, refOff, c.hexp, outW, c.row);
      }
      bufs[i] = c.row;
      offs[i] = 0;
    }
    const o = (oy - y0) * outW * 3;
    switch (st.color) {
      case 'gray':
        grayToRgb(bufs[0]!, offs[0]!, rgb, o, outW);
        break;
      case 'ycbcr':
        ycbcrToRgb(bufs[0]!, offs[0]!, bufs[1]!, offs[1]!, bufs[2]!, offs[2]!, rgb, o, outW);
        break;
      case 'rgb':
        planesToRgb(bufs[0]!, offs[0]!, bufs[1]!, offs[1]!, bufs[2]!, offs[2]!, rgb, o, outW);
        break;
      case 'cmyk':
        cmykToRgb(bufs[0]!, offs[0]!, bufs[1]!, offs[1]!, bufs[2]!, offs[2]!, bufs[3]!, offs[3]!, rgb, o, outW);
        break;
      case 'ycck':
        ycckToRgb(bufs[0]!, offs[0]!, bufs[1]!, offs[1]!, bufs[2]!, offs[2]!, bufs[3]!, offs[3]!, rgb, o, outW);
        break;
    }
  }
  sink.write(rgb.subarray(0, (y1 - y0) * outW * 3), y0, y1 - y0);
}

/** Calls `each(scanComp, blockIndex)` for every block of the scan in MCU order, with restarts. */
function forEachBlock(
  st: State,
  reader: BitReader,
  sc: ScanComp[],
  interval: number,
  each: (s: ScanComp, b: number, rs: Restarts) => void,
  arith: ArithScan | null = null,
): void {
  const rs = new Restarts(reader, interval, sc, arith);
  for (const s of sc) s.comp.pred = 0;
  if (sc.length === 1) {
    const s = sc[0]!;
    const c = s.comp;
    for (let by = 0; by < c.rbh; by++) {
      for (let bx = 0; bx < c.rbw; bx++) if (rs.beforeMcu()) each(s, by * c.bw + bx, rs);
    }
    return;
  }
  const L = st.layout;
  for (let my = 0; my < L.mcusY; my++) {
    for (let mx = 0; mx < L.mcusX; mx++) {
      if (!rs.beforeMcu()) continue;
      for (const s of sc) {
        const c = s.comp;
        for (let v = 0; v < c.v; v++) {
          for (let h = 0; h < c.h; h++) each(s, (my * c.v + v) * c.bw + mx * c.h + h, rs);
        }
      }
    }
  }
}

/** A sequential scan of a multi-scan file, into the coefficient buffers. */
function sequentialScan(st: State, reader: BitReader, sc: ScanComp[], interval: number, arith: ArithScan | null): void {
  if (arith) {
    forEachBlock(st, reader, sc, interval, (s, b) => arithBlock(arith, s, s.comp.coefs!, b * s.comp.kept), arith);
    return;
  }
  forEachBlock(st, reader, sc, interval, (s, b) => {
    const c = s.comp;
    c.pred = decodeBlockFast(reader, s.dc!, s.ac!, c.pred, c.coefs!, b * c.kept, c.zslot);
  });
}

/**
 * One block of a sequential arithmetic-coded scan (jdarith.c decode_mcu): DC, then AC 1..63.
 * A block after damage in the same restart interval stays as it is, as the rest of libjpeg's MCU does.
 */
function arithBlock(arith: ArithScan, s: ScanComp, out: Int16Array, base: number): void {
  if (!arith.ok) return;
  const c = s.comp;
  if (!arith.dc(s.si, c)) return;
  const z = c.zslot[0]!;
  if (z >= 0) out[base + z] = c.pred;
  arith.ac(s.si, 1, 63, 0, out, base, c.zslot, null, 0);
}

/** One progressive scan: jdphuff.c's four decoders. */
function progressiveScan(st: State, reader: BitReader, sc: ScanComp[], interval: number, scan: Scan, arith: ArithScan | null): void {
  const { ss, se, ah, al } = scan;
  const p1 = 1 << al;
  const m1 = -1 << al;
  if (arith) return arithProgressiveScan(st, reader, sc, interval, scan, arith);
  if (ss === 0) {
    if (ah === 0) {
      forEachBlock(st, reader, sc, interval, (s, b) => {
        const c = s.comp;
        const t = reader.decode(s.dc!);
        c.pred = (c.pred + (t ? reader.receiveExtend(t) : 0)) | 0;
        c.coefs![b * c.kept + c.slots[0]!] = c.pred << al;
      });
    } else {
      forEachBlock(st, reader, sc, interval, (s, b) => {
        const c = s.comp;
        if (reader.getBit()) {
          const i = b * c.kept + c.slots[0]!;
          c.coefs![i] = c.coefs![i]! | p1;
        }
      });
    }
    return;
  }
  // AC scans have one component (readSos): its blocks in raster order, each its own MCU.
  const { comp: c, ac } = sc[0]!;
  const rs = new Restarts(reader, interval, sc);
  const grid = { rows: c.rbh, cols: c.rbw, stride: c.bw };
  if (ah === 0) acFirstScan(reader, rs, grid, ac!, c.coefs!, c.kept, c.zslot, c.nz!, ss, se, al);
  else acRefineScan(reader, rs, grid, ac!, c.coefs!, c.kept, c.zslot, c.nz!, ss, se, p1, m1);
}

/** One progressive arithmetic-coded scan: jdarith.c's four MCU decoders. */
function arithProgressiveScan(st: State, reader: BitReader, sc: ScanComp[], interval: number, scan: Scan, arith: ArithScan): void {
  const { ss, se, ah, al } = scan;
  const p1 = 1 << al;
  const m1 = -1 << al;
  if (ss === 0) {
    if (ah === 0) {
      forEachBlock(st, reader, sc, interval, (s, b) => {
        const c = s.comp;
        if (arith.ok && arith.dc(s.si, c)) c.coefs![b * c.kept + c.slots[0]!] = c.pred << al;
      }, arith);
    } else {
      // A refinement bit is read for every block, damage or not (decode_mcu_DC_refine has no check).
      const rs = new Restarts(reader, interval, sc, arith);
      const each = (s: ScanComp, b: number): void => {
        const c = s.comp;
        if (arith.dcRefineBit()) {
          const i = b * c.kept + c.slots[0]!;
          c.coefs![i] = c.coefs![i]! | p1;
        }
      };
      forEachMcu(st, sc, rs, each);
    }
    return;
  }
  // AC scans have one component (readSos): its blocks in raster order, each its own MCU.
  const { comp: c } = sc[0]!;
  const rs = new Restarts(reader, interval, sc, arith);
  for (let by = 0; by < c.rbh; by++) {
    for (let bx = 0; bx < c.rbw; bx++) {
      if (!rs.beforeMcu()) continue;
      const b = by * c.bw + bx;
      if (ah === 0) arith.ac(0, ss, se, al, c.coefs!, b * c.kept, c.zslot, c.nz!, b);
      else arith.acRefine(0, ss, se, p1, m1, c.coefs!, b * c.kept, c.zslot, c.nz!, b);
    }
  }
}

/** The blocks of a scan in MCU order, every MCU visited (restarts still processed). */
function forEachMcu(st: State, sc: ScanComp[], rs: Restarts, each: (s: ScanComp, b: number) => void): void {
  if (sc.length === 1) {
    const s = sc[0]!;
    const c = s.comp;
    for (let by = 0; by < c.rbh; by++) {
      for (let bx = 0; bx < c.rbw; bx++) {
        rs.beforeMcu();
        each(s, by * c.bw + bx);
      }
    }
    return;
  }
  const L = st.layout;
  for (let my = 0; my < L.mcusY; my++) {
    for (let mx = 0; mx < L.mcusX; mx++) {
      rs.beforeMcu();
      for (const s of sc) {
        const c = s.comp;
        for (let v = 0; v < c.v; v++) {
          for (let h = 0; h < c.h; h++) each(s, (my * c.v + v) * c.bw + mx * c.h + h);
        }
      }
    }
  }
}

/** After the last scan of a buffered file: IDCT one iMCU row at a time and emit. */
function outputBuffered(st: State, sink: RowSink): void {
  const L = st.layout;
  for (let r = 0; r < L.mcusY; r++) {
    const slot = (r & 1) as 0 | 1;
    if (r >= 2) saveAbove(st, slot);
    for (const c of st.comps) {
      const strip = c.strips[slot];
      if (!c.quant) {
        // Never in a scan: libjpeg's multiplier table stays zero, so the IDCT yields mid-grey.
        strip.fill(128);
        continue;
      }
      for (let v = 0; v < c.v; v++) {
        const by = r * c.v + v;
        if (by >= c.rbh) break;
        for (let bx = 0; bx < c.rbw; bx++) {
          idctInto(st, c, c.coefs!, (by * c.bw + bx) * c.kept, c.slots, strip, v * c.sy * c.stride + bx * c.sx);
        }
      }
    }
    if (r > 0) emitStrip(st, r - 1, sink);
  }
  if (L.mcusY >= 2) saveAbove(st, L.mcusY & 1);
  emitStrip(st, L.mcusY - 1, sink);
}

/**
 * Whether the marker structure reaches EOI, walked as libjpeg reads it (junk between segments
 * is skipped, entropy-coded data runs to the next marker). Pillow refuses a file that ends
 * first ("image file is truncated"), and so do we.
 */
export function reachesEoi(bytes: Uint8Array): boolean {
  for (let pos = 2; ; ) {
    const m = nextMarker(bytes, pos);
    if (m < 0) return false;
    const code = bytes[m + 1]!;
    pos = m + 2;
    if (code === 0xd9) return true;
    if ((code >= 0xd0 && code <= 0xd7) || code === 0x01) continue;
    if (pos + 2 > bytes.length) return false;
    const length = u16(bytes, pos);
    if (length < 2) return false;
    pos += length;
    if (pos > bytes.length) return false;
  }
}

/** The frame header's facts, read as libjpeg reads markers (for files with junk between segments). */
export function frameFacts(bytes: Uint8Array): { sof: number; precision: number; width: number; height: number; components: number; scanStart: number } | null {
  let facts: { sof: number; precision: number; width: number; height: number; components: number; scanStart: number } | null = null;
  for (let pos = 2; ; ) {
    const m = nextMarker(bytes, pos);
    if (m < 0) return null;
    const code = bytes[m + 1]!;
    pos = m + 2;
    if (code === 0xda) return facts ? { ...facts, scanStart: m } : null;
    if (code === 0xd9) return null;
    if ((code >= 0xd0 && code <= 0xd7) || code === 0x01) continue;
    if (pos + 2 > bytes.length) return null;
    const length = u16(bytes, pos);
    if (code >= 0xc0 && code <= 0xcf && code !== 0xc4 && code !== 0xc8 && code !== 0xcc && pos + 8 <= bytes.length) {
      facts = { sof: code, precision: bytes[pos + 2]!, height: u16(bytes, pos + 3), width: u16(bytes, pos + 5), components: bytes[pos + 7]!, scanStart: -1 };
    }
    if (length < 2) return null;
    pos += length;
  }
}
