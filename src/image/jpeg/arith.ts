/**
 * Arithmetic-coded JPEG (SOF9 sequential, SOF10 progressive): the QM-coder of ITU-T T.81
 * Annex D and the coefficient models of Annex F / G, written to behave as libjpeg-turbo's
 * jdarith.c does (Pillow's decoder), damaged data included: the C register carries a floating
 * bit buffer, data that runs into a marker continues with zero bytes, and a magnitude or
 * spectral overflow leaves the rest of the restart interval's blocks at zero.
 *
 * Coefficients go where the Huffman decoders put theirs (decoder.ts): `zslot` maps a zig-zag
 * position to its stored slot (-1: not kept at this reduced scale), and the `nz` bitmap keeps
 * every position's nonzero-ness, which refinement scans need even for coefficients not kept.
 */
import type { BitReader } from './bits';

/**
 * T.81 Table D.2, the probability estimation state machine: Qe, and the next state after an
 * MPS and after an LPS (with the MPS switch in bit 7 of the latter). State 113 is the fixed
 * 0.5 estimate that libjpeg uses for sign bits (as T.851 suggests).
 */
const QE = Uint16Array.from([
  0x5a1d, 0x2586, 0x1114, 0x080b, 0x03d8, 0x01da, 0x00e5, 0x006f, 0x0036, 0x001a, 0x000d, 0x0006, 0x0003, 0x0001, 0x5a7f, 0x3f25, 0x2cf2, 0x207c,
  0x17b9, 0x1182, 0x0cef, 0x09a1, 0x072f, 0x055c, 0x0406, 0x0303, 0x0240, 0x01b1, 0x0144, 0x00f5, 0x00b7, 0x008a, 0x0068, 0x004e, 0x003b, 0x002c,
  0x5ae1, 0x484c, 0x3a0d, 0x2ef1, 0x261f, 0x1f33, 0x19a8, 0x1518, 0x1177, 0x0e74, 0x0bfb, 0x09f8, 0x0861, 0x0706, 0x05cd, 0x04de, 0x040f, 0x0363,
  0x02d4, 0x025c, 0x01f8, 0x01a4, 0x0160, 0x0125, 0x00f6, 0x00cb, 0x00ab, 0x008f, 0x5b12, 0x4d04, 0x412c, 0x37d8, 0x2fe8, 0x293c, 0x2379, 0x1edf,
  0x1aa9, 0x174e, 0x1424, 0x119c, 0x0f6b, 0x0d51, 0x0bb6, 0x0a40, 0x5832, 0x4d1c, 0x438e, 0x3bdd, 0x34ee, 0x2eae, 0x299a, 0x2516, 0x5570, 0x4ca9,
  0x44d9, 0x3e22, 0x3824, 0x32b4, 0x2e17, 0x56a8, 0x4f46, 0x47e5, 0x41cf, 0x3c3d, 0x375e, 0x5231, 0x4c0f, 0x4639, 0x415e, 0x5627, 0x50e7, 0x4b85,
  0x5597, 0x504f, 0x5a10, 0x5522, 0x59eb, 0x5a1d,
]);
const NEXT_MPS = Uint8Array.from([
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 13, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 9, 37, 38, 39,
  40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 32, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75,
  76, 77, 78, 79, 48, 81, 82, 83, 84, 85, 86, 87, 71, 89, 90, 91, 92, 93, 94, 86, 96, 97, 98, 99, 100, 93, 102, 103, 104, 99, 106, 107, 103, 109,
  107, 111, 109, 111, 113,
]);
const NEXT_LPS = Uint8Array.from([
  1, 14, 16, 18, 20, 23, 25, 28, 30, 33, 35, 9, 10, 12, 15, 36, 38, 39, 40, 42, 43, 45, 46, 48, 49, 51, 52, 54, 56, 57, 59, 60, 62, 63, 32, 33, 37,
  64, 65, 67, 68, 69, 70, 72, 73, 74, 75, 77, 78, 79, 48, 50, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 61, 61, 65, 80, 81, 82, 83, 84, 86, 87, 87,
  72, 72, 74, 74, 75, 77, 77, 80, 88, 89, 90, 91, 92, 93, 86, 88, 95, 96, 97, 99, 99, 93, 95, 101, 102, 103, 104, 99, 105, 106, 107, 103, 105, 108,
  109, 110, 111, 110, 112, 112, 113,
]);
const SWITCH_STATES = new Set([0, 14, 36, 64, 80, 88, 95, 105, 110, 112]);
/** Next state after an LPS, with bit 7 set where the MPS switches. */
const LPS = Uint8Array.from(NEXT_LPS, (n, i) => n | (SWITCH_STATES.has(i) ? 0x80 : 0));

/** T.81 F.1.4.4: 49 DC bins and 245 AC bins are used; libjpeg rounds them up to these. */
const DC_BINS = 64;
const AC_BINS = 256;
/** Conditioning tables are numbered 0..15 (a DAC segment's Tb, a scan's Td/Ta). */
export const ARITH_TABLES = 16;

/** DAC values: DC lower and upper bounds (L, U) and the AC threshold K, by table; SOI's defaults. */
export interface ArithConditioning {
  dcL: Uint8Array;
  dcU: Uint8Array;
  acK: Uint8Array;
}

export function defaultConditioning(): ArithConditioning {
  return { dcL: new Uint8Array(ARITH_TABLES), dcU: new Uint8Array(ARITH_TABLES).fill(1), acK: new Uint8Array(ARITH_TABLES).fill(5) };
}

/** Bytes of a decode's statistics areas (for the memory bound). */
export const ARITH_STATE_BYTES = ARITH_TABLES * (DC_BINS + AC_BINS) + 256;

/** The QM decoder over a BitReader's bytes (its position and marker state, no bit buffer). */
export class ArithDecoder {
  /** Interval base and bit buffer, with the cut between them floating at `ct`. */
  private c = 0;
  private a = 0;
  /** Bits left in the buffer part of c; -16 forces two bytes in; -1 marks a damaged interval. */
  ct = -16;

  constructor(private readonly reader: BitReader) {}

  reset(): void {
    this.c = 0;
    this.a = 0;
    this.ct = -16;
  }

  /** The next byte of entropy-coded data, 0 once a marker is met (T.81 D.2.6's convention). */
  private byte(): number {
    const r = this.reader;
    if (r.markerPos >= 0) return 0;
    const data = r.data;
    const p = r.pos;
    if (p >= data.length) {
      r.markerPos = p;
      return 0;
    }
    const b = data[p]!;
    if (b !== 0xff) {
      r.pos = p + 1;
      return b;
    }
    let q = p + 1;
    while (q < data.length && data[q] === 0xff) q++;
    if (q < data.length && data[q] === 0) {
      r.pos = q + 1;
      return 0xff;
    }
    r.markerPos = q - 1;
    return 0;
  }

  /** One binary decision with the adaptive estimate in `stats[i]` (MPS in bit 7, state below). */
  decode(stats: Uint8Array, i: number): number {
    while (this.a < 0x8000) {
      if (--this.ct < 0) {
        this.c = (this.c << 8) | this.byte();
        if ((this.ct += 8) < 0 && ++this.ct === 0) this.a = 0x8000; // two initial bytes are in
      }
      this.a <<= 1;
    }
    let sv = stats[i]!;
    const state = sv & 0x7f;
    const qe = QE[state]!;
    this.a -= qe;
    const cut = this.a << this.ct;
    if (this.c >= cut) {
      this.c -= cut;
      // The lower subinterval: LPS unless it is the larger one (conditional exchange).
      if (this.a < qe) stats[i] = (sv & 0x80) ^ NEXT_MPS[state]!;
      else {
        stats[i] = (sv & 0x80) ^ LPS[state]!;
        sv ^= 0x80;
      }
      this.a = qe;
    } else if (this.a < 0x8000) {
      if (this.a < qe) {
        stats[i] = (sv & 0x80) ^ LPS[state]!;
        sv ^= 0x80;
      } else stats[i] = (sv & 0x80) ^ NEXT_MPS[state]!;
    }
    return sv >> 7;
  }
}

/** Where a scan's component keeps its coefficients (decoder.ts's Comp, the fields used here). */
export interface ArithTarget {
  /** DC prediction (the last DC value), reset at a scan's start and at restarts. */
  pred: number;
  zslot: Int8Array;
}

/** One arithmetic-coded scan: its statistics and the QM decoder. */
export class ArithScan {
  readonly decoder: ArithDecoder;
  private readonly dcStats: Uint8Array[];
  private readonly acStats: Uint8Array[];
  private readonly fixed = Uint8Array.of(113);
  /** Per scan component: DC conditioning context (0, 4, 8, 12 or 16). */
  private readonly dcContext: Int32Array;

  constructor(
    reader: BitReader,
    private readonly cond: ArithConditioning,
    private readonly dcTables: number[],
    private readonly acTables: number[],
    /** Which statistics a restart resets: DC (sequential, or a first DC scan) and AC (sequential, or an AC scan). */
    private readonly usesDc: boolean,
    private readonly usesAc: boolean,
    stats: { dc: Uint8Array[]; ac: Uint8Array[] },
  ) {
    this.decoder = new ArithDecoder(reader);
    this.dcStats = stats.dc;
    this.acStats = stats.ac;
    this.dcContext = new Int32Array(dcTables.length);
    this.resetStats();
  }

  /** At the scan's start and at each restart (after the caller has passed the RSTn marker). */
  resetStats(): void {
    for (let i = 0; i < this.dcTables.length; i++) {
      if (this.usesDc) {
        this.dcStats[this.dcTables[i]!]!.fill(0);
        this.dcContext[i] = 0;
      }
      if (this.usesAc) this.acStats[this.acTables[i]!]!.fill(0);
    }
    this.decoder.reset();
  }

  /** False after a magnitude or spectral overflow, until the next restart: blocks stay as they are. */
  get ok(): boolean {
    return this.decoder.ct !== -1;
  }

  /**
   * T.81 F.2.4.1: the next DC difference of scan component `si`, added to `t.pred`. Returns
   * false (and marks the interval damaged) on a magnitude overflow.
   */
  dc(si: number, t: ArithTarget): boolean {
    const d = this.decoder;
    const tbl = this.dcTables[si]!;
    const stats = this.dcStats[tbl]!;
    let s = this.dcContext[si]!;
    if (d.decode(stats, s) === 0) {
      this.dcContext[si] = 0;
      return true;
    }
    const sign = d.decode(stats, s + 1);
    s += 2 + sign;
    let m = d.decode(stats, s);
    if (m !== 0) {
      s = 20; // X1
      while (d.decode(stats, s) !== 0) {
        if ((m <<= 1) === 0x8000) return this.fail();
        s++;
      }
    }
    // F.1.4.4.1.2: the conditioning category of the next difference.
    if (m < (1 << this.cond.dcL[tbl]!) >> 1) this.dcContext[si] = 0;
    else if (m > (1 << this.cond.dcU[tbl]!) >> 1) this.dcContext[si] = 12 + sign * 4;
    else this.dcContext[si] = 4 + sign * 4;
    let v = m;
    s += 14;
    while ((m >>= 1) !== 0) if (d.decode(stats, s) !== 0) v |= m;
    v += 1;
    t.pred = (t.pred + (sign ? -v : v)) | 0;
    return true;
  }

  /**
   * T.81 F.2.4.2 / G.1.3.2: AC coefficients ss..se of one block, each shifted left by `al`,
   * stored through `zslot` at `coefs[base + slot]` (16-bit, as libjpeg's JCOEF), and their
   * nonzero bits in `nz[2b]`, `nz[2b + 1]` when a map is given.
   */
  ac(si: number, ss: number, se: number, al: number, coefs: Int16Array, base: number, zslot: Int8Array, nz: Uint32Array | null, b: number): void {
    const d = this.decoder;
    const tbl = this.acTables[si]!;
    const stats = this.acStats[tbl]!;
    const kx = this.cond.acK[tbl]!;
    for (let k = ss; k <= se; k++) {
      let s = 3 * (k - 1);
      if (d.decode(stats, s) !== 0) break; // end of block
      while (d.decode(stats, s + 1) === 0) {
        s += 3;
        if (++k > se) {
          this.fail();
          return;
        }
      }
      const sign = d.decode(this.fixed, 0);
      s += 2;
      let m = d.decode(stats, s);
      if (m !== 0 && d.decode(stats, s) !== 0) {
        m <<= 1;
        s = k <= kx ? 189 : 217;
        while (d.decode(stats, s) !== 0) {
          if ((m <<= 1) === 0x8000) {
            this.fail();
            return;
          }
          s++;
        }
      }
      let v = m;
      s += 14;
      while ((m >>= 1) !== 0) if (d.decode(stats, s) !== 0) v |= m;
      v += 1;
      const value = (sign ? -v : v) << al;
      const z = zslot[k]!;
      if (z >= 0) coefs[base + z] = value;
      if (nz !== null && (value & 0xffff) !== 0) {
        if (k < 32) nz[2 * b] = nz[2 * b]! | (1 << k);
        else nz[2 * b + 1] = nz[2 * b + 1]! | (1 << (k - 32));
      }
    }
  }

  /** G.1.3.1: the next bit of a DC value in a refinement scan (fixed 0.5 estimate). */
  dcRefineBit(): number {
    return this.decoder.decode(this.fixed, 0);
  }

  /**
   * G.1.3.3: one block of an AC refinement scan. Which coefficients are already nonzero comes
   * from the `nz` map (kept or not); corrections and new ones go to the kept slots.
   */
  acRefine(si: number, ss: number, se: number, p1: number, m1: number, coefs: Int16Array, base: number, zslot: Int8Array, nz: Uint32Array, b: number): void {
    const d = this.decoder;
    const stats = this.acStats[this.acTables[si]!]!;
    let lo = nz[2 * b]!;
    let hi = nz[2 * b + 1]!;
    const nonzero = (k: number): boolean => ((k < 32 ? lo >>> k : hi >>> (k - 32)) & 1) !== 0;
    // The previous stage's end of block: the last coefficient already nonzero.
    let kex = se;
    while (kex > 0 && !nonzero(kex)) kex--;
    for (let k = ss; k <= se; k++) {
      let s = 3 * (k - 1);
      if (k > kex && d.decode(stats, s) !== 0) break; // end of block
      for (;;) {
        const z = zslot[k]!;
        if (nonzero(k)) {
          if (d.decode(stats, s + 2) !== 0 && z >= 0) {
            const c = coefs[base + z]!;
            coefs[base + z] = c + (c < 0 ? m1 : p1);
          }
          break;
        }
        if (d.decode(stats, s + 1) !== 0) {
          const value = d.decode(this.fixed, 0) !== 0 ? m1 : p1;
          if (z >= 0) coefs[base + z] = value;
          if (k < 32) lo |= 1 << k;
          else hi |= 1 << (k - 32);
          break;
        }
        s += 3;
        if (++k > se) {
          this.fail();
          nz[2 * b] = lo;
          nz[2 * b + 1] = hi;
          return;
        }
      }
    }
    nz[2 * b] = lo;
    nz[2 * b + 1] = hi;
  }

  private fail(): false {
    this.decoder.ct = -1;
    return false;
  }
}
