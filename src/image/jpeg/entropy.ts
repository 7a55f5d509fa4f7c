/**
 * The hot loops of entropy decoding, written for speed (a 12 MP photo is ~5 million symbols):
 * the reader's bit buffer lives in locals for a whole block, a byte is appended inline unless
 * it is 0xFF (stuffing and markers go through BitReader.fill, which owns libjpeg's behaviour
 * on damaged data), and one `fast` table read gives code length, run and the extended value.
 * Bits are consumed exactly as BitReader.decode + receiveExtend consume them, so the results,
 * corrupt files included, are the same as the plain decoders'.
 */
import { FAST_BITS, FAST_PENDING, slowSymbol, type BitReader, type HuffmanTable } from './bits';

const FAST_MASK = (1 << FAST_BITS) - 1;

/** Set bits of a 32-bit word. */
const popcount = (x: number): number => {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
};

/** HUFF_EXTEND. */
const extend = (v: number, s: number): number => (v < 1 << (s - 1) ? v - (1 << s) + 1 : v);

/**
 * jdhuff.c decode_mcu for one block of a sequential scan: returns the new DC predictor.
 * Zig-zag position k goes to blk[bo + zslot[k]]; -1 drops it (a reduced-scale decode keeps only
 * the coefficients its IDCT reads, but every symbol must still be decoded).
 */
export function decodeBlockFast(r: BitReader, dc: HuffmanTable, ac: HuffmanTable, pred: number, blk: Int16Array, bo: number, zslot: Int8Array): number {
  const data = r.data;
  // Bytes the inline refill may take; none once a marker was met (the reader then pads with zeros).
  let end = r.markerPos < 0 ? data.length : 0;
  let buf = r.buf;
  let bits = r.bits;
  let pos = r.pos;

  // DC. At least 17 bits before any code: the longest code, or libjpeg's 17-bit "no code".
  if (bits < 17) {
    while (bits <= 24 && pos < end) {
      const b = data[pos]!;
      if (b === 0xff) break;
      buf = (buf << 8) | b;
      pos++;
      bits += 8;
    }
    if (bits < 17) {
      r.buf = buf, r.bits = bits, r.pos = pos, r.fill();
      buf = r.buf, bits = r.bits, pos = r.pos, end = r.markerPos < 0 ? end : 0;
    }
  }
  let e = dc.fast[(buf >>> (bits - FAST_BITS)) & FAST_MASK]!;
  if ((e & 31) !== 0 && (e & FAST_PENDING) === 0) {
    bits -= e & 31;
    pred = (pred + (e >> 16)) | 0;
  } else {
    let s: number;
    if ((e & 31) !== 0) {
      bits -= e & 31;
      s = (e >> 9) & 15;
    } else {
      const x = slowSymbol(dc, buf, bits);
      bits -= x >> 8;
      s = x & 15;
    }
    if (s !== 0) {
      if (bits < s) {
        r.buf = buf, r.bits = bits, r.pos = pos, r.fill();
        buf = r.buf, bits = r.bits, pos = r.pos, end = r.markerPos < 0 ? end : 0;
      }
      bits -= s;
      pred = (pred + extend((buf >>> bits) & ((1 << s) - 1), s)) | 0;
    }
  }
  const z0 = zslot[0]!;
  if (z0 >= 0) blk[bo + z0] = pred;

  const fast = ac.fast;
  for (let k = 1; k < 64; k++) {
    if (bits < 17) {
      while (bits <= 24 && pos < end) {
        const b = data[pos]!;
        if (b === 0xff) break;
        buf = (buf << 8) | b;
        pos++;
        bits += 8;
      }
      if (bits < 17) {
        r.buf = buf, r.bits = bits, r.pos = pos, r.fill();
        buf = r.buf, bits = r.bits, pos = r.pos, end = r.markerPos < 0 ? end : 0;
      }
    }
    e = fast[(buf >>> (bits - FAST_BITS)) & FAST_MASK]!;
    let v: number;
    let s: number;
    let run: number;
    if ((e & 31) !== 0) {
      bits -= e & 31;
      run = (e >> 5) & 15;
      if ((e & FAST_PENDING) === 0) {
        v = e >> 16;
        if (v !== 0) {
          k += run;
          const z = zslot[k]!;
          if (z >= 0) blk[bo + z] = v;
          continue;
        }
        if (run !== 15) break;
        k += 15;
        continue;
      }
      s = (e >> 9) & 15;
    } else {
      const x = slowSymbol(ac, buf, bits);
      bits -= x >> 8;
      s = x & 15;
      run = (x >> 4) & 15;
      if (s === 0) {
        if (run !== 15) break;
        k += 15;
        continue;
      }
    }
    if (bits < s) {
      r.buf = buf, r.bits = bits, r.pos = pos, r.fill();
      buf = r.buf, bits = r.bits, pos = r.pos, end = r.markerPos < 0 ? end : 0;
    }
    bits -= s;
    k += run;
    const z = zslot[k]!;
    if (z >= 0) blk[bo + z] = extend((buf >>> bits) & ((1 << s) - 1), s);
  }
  r.buf = buf;
  r.bits = bits;
  r.pos = pos;
  return pred;
}

/*
 * Progressive files keep, for every block, which coefficients are nonzero as a 64-bit map in
 * zig-zag order (two words: positions 0-31, 32-63): refinement scans must know this for every
 * coefficient, stored or not, and walk only the set bits inside an end-of-band run.
 */

/** What a scan loop needs of the decoder's restart bookkeeping (decoder.ts Restarts). */
export interface McuGate {
  /** Before each MCU (here: block); handles a due restart; false: leave the block as it is. */
  beforeMcu(): boolean;
  eobrun: number;
}

/** The blocks of a single-component scan: rows x cols of a grid `stride` blocks wide. */
export interface BlockGrid {
  rows: number;
  cols: number;
  stride: number;
}

/**
 * A whole AC first scan (jdphuff.c decode_mcu_AC_first per block): values, shifted by al, go to
 * coefs[b * kept + zslot[k]] unless dropped; the nonzero map nz[2b], nz[2b + 1] follows what a
 * 16-bit coefficient would hold. AC scans have one component, so an MCU is one block.
 */
export function acFirstScan(r: BitReader, gate: McuGate, grid: BlockGrid, ac: HuffmanTable, coefs: Int16Array, kept: number, zslot: Int8Array, nz: Uint32Array, ss: number, se: number, al: number): void {
  const data = r.data;
  const fast = ac.fast;
  for (let by = 0; by < grid.rows; by++) {
    for (let bx = 0; bx < grid.cols; bx++) {
      if (!gate.beforeMcu()) continue;
      if (gate.eobrun > 0) {
        gate.eobrun--;
        continue;
      }
      const b = by * grid.stride + bx;
      const base = b * kept;
      let end = r.markerPos < 0 ? data.length : 0;
      let buf = r.buf;
      let bits = r.bits;
      let pos = r.pos;
      let lo = nz[2 * b]!;
      let hi = nz[2 * b + 1]!;
      for (let k = ss; k <= se; k++) {
        if (bits < 17) {
          while (bits <= 24 && pos < end) {
            const c = data[pos]!;
            if (c === 0xff) break;
            buf = (buf << 8) | c;
            pos++;
            bits += 8;
          }
          if (bits < 17) {
            r.buf = buf, r.bits = bits, r.pos = pos, r.fill();
            buf = r.buf, bits = r.bits, pos = r.pos, end = r.markerPos < 0 ? end : 0;
          }
        }
        const e = fast[(buf >>> (bits - FAST_BITS)) & FAST_MASK]!;
        let s: number;
        let run: number;
        let v = 0;
        if ((e & 31) !== 0) {
          bits -= e & 31;
          run = (e >> 5) & 15;
          s = (e >> 9) & 15;
          if ((e & FAST_PENDING) === 0) v = e >> 16;
        } else {
          const x = slowSymbol(ac, buf, bits);
          bits -= x >> 8;
          s = x & 15;
          run = (x >> 4) & 15;
        }
        // Magnitude bits still to read (pending or slow), or the EOBn run length bits.
        const need = s !== 0 ? (v === 0 ? s : 0) : run !== 15 ? run : 0;
        if (bits < need) {
          r.buf = buf, r.bits = bits, r.pos = pos, r.fill();
          buf = r.buf, bits = r.bits, pos = r.pos, end = r.markerPos < 0 ? end : 0;
        }
        if (s !== 0) {
          if (v === 0) {
            bits -= s;
            v = extend((buf >>> bits) & ((1 << s) - 1), s);
          }
          k += run;
          v <<= al;
          const z = zslot[k]!;
          if (z >= 0) coefs[base + z] = v;
          const zz = k > 63 ? 63 : k;
          if ((v & 0xffff) !== 0) {
            if (zz < 32) lo |= 1 << zz;
            else hi |= 1 << (zz - 32);
          } else if (zz < 32) lo &= ~(1 << zz);
          else hi &= ~(1 << (zz - 32));
        } else if (run === 15) {
          k += 15;
        } else {
          let eobrun = 1 << run;
          if (run !== 0) {
            bits -= run;
            eobrun += (buf >>> bits) & ((1 << run) - 1);
          }
          gate.eobrun = eobrun - 1;
          break;
        }
      }
      nz[2 * b] = lo;
      nz[2 * b + 1] = hi;
      r.buf = buf;
      r.bits = bits;
      r.pos = pos;
    }
  }
}

/**
 * A whole AC refinement scan (jdphuff.c decode_mcu_AC_refine per block); p1 = 1 << al,
 * m1 = -1 << al. Correction bits are read for every nonzero coefficient, stored or not, but
 * only stored ones change.
 */
export function acRefineScan(r: BitReader, gate: McuGate, grid: BlockGrid, ac: HuffmanTable, coefs: Int16Array, kept: number, zslot: Int8Array, nz: Uint32Array, ss: number, se: number, p1: number, m1: number): void {
  const data = r.data;
  const fast = ac.fast;
  // Zig-zag positions that are stored, as a 64-bit map like nz.
  let keptLo = 0;
  let keptHi = 0;
  for (let k = 0; k < 64; k++) {
    if (zslot[k]! < 0) continue;
    if (k < 32) keptLo |= 1 << k;
    else keptHi |= 1 << (k - 32);
  }
  for (let by = 0; by < grid.rows; by++) {
    for (let bx = 0; bx < grid.cols; bx++) {
      if (!gate.beforeMcu()) continue;
      const b = by * grid.stride + bx;
      const base = b * kept;
      let end = r.markerPos < 0 ? data.length : 0;
      let buf = r.buf;
      let bits = r.bits;
      let pos = r.pos;
      let lo = nz[2 * b]!;
      let hi = nz[2 * b + 1]!;
      let eobrun = gate.eobrun;
      let k = ss;
      if (eobrun === 0) {
        for (; k <= se; k++) {
          if (bits < 17) {
            while (bits <= 24 && pos < end) {
              const c = data[pos]!;
              if (c === 0xff) break;
              buf = (buf << 8) | c;
              pos++;
              bits += 8;
            }
            if (bits < 17) {
              r.buf = buf, r.bits = bits, r.pos = pos, r.fill();
              buf = r.buf, bits = r.bits, pos = r.pos, end = r.markerPos < 0 ? end : 0;
            }
          }
          const e = fast[(buf >>> (bits - FAST_BITS)) & FAST_MASK]!;
          let s: number;
          let run: number;
          if ((e & 31) !== 0) {
            s = (e >> 9) & 15;
            run = (e >> 5) & 15;
            // Only the code: whatever the size says, one bit follows (libjpeg warns when it is not 1).
            bits -= (e & FAST_PENDING) !== 0 ? e & 31 : (e & 31) - s;
          } else {
            const x = slowSymbol(ac, buf, bits);
            bits -= x >> 8;
            s = x & 15;
            run = (x >> 4) & 15;
          }
          let sz = 0;
          if (s !== 0) {
            if (bits < 1) {
              r.buf = buf, r.bits = bits, r.pos = pos, r.fill();
              buf = r.buf, bits = r.bits, pos = r.pos, end = r.markerPos < 0 ? end : 0;
            }
            bits--;
            sz = ((buf >>> bits) & 1) !== 0 ? p1 : m1;
          } else if (run !== 15) {
            eobrun = 1 << run;
            if (run !== 0) {
              if (bits < run) {
                r.buf = buf, r.bits = bits, r.pos = pos, r.fill();
                buf = r.buf, bits = r.bits, pos = r.pos, end = r.markerPos < 0 ? end : 0;
              }
              bits -= run;
              eobrun += (buf >>> bits) & ((1 << run) - 1);
            }
            break;
          }
          do {
            if ((k < 32 ? (lo >>> k) & 1 : (hi >>> (k - 32)) & 1) !== 0) {
              if (bits < 1) {
                r.buf = buf, r.bits = bits, r.pos = pos, r.fill();
                buf = r.buf, bits = r.bits, pos = r.pos, end = r.markerPos < 0 ? end : 0;
              }
              bits--;
              if (((buf >>> bits) & 1) !== 0) {
                const z = zslot[k]!;
                if (z >= 0) {
                  const v = coefs[base + z]!;
                  if ((v & p1) === 0) coefs[base + z] = v >= 0 ? v + p1 : v + m1;
                }
              }
            } else if (--run < 0) break;
            k++;
          } while (k <= se);
          if (sz !== 0) {
            const z = zslot[k]!;
            if (z >= 0) coefs[base + z] = sz;
            const zz = k > 63 ? 63 : k;
            if (zz < 32) lo |= 1 << zz;
            else hi |= 1 << (zz - 32);
          }
        }
      }
      if (eobrun > 0) {
        // The rest of the band: a correction bit for each nonzero coefficient, lowest first.
        // Only stored ones need theirs; the bits of the others are skipped a run at a time.
        for (let w = 0; w < 2; w++) {
          const first = w * 32;
          if (se < first || k > first + 31) continue;
          let m = w === 0 ? lo : hi;
          if (k > first) m &= -1 << (k - first);
          if (se < first + 31) m &= (1 << (se - first + 1)) - 1;
          let keep = m & (w === 0 ? keptLo : keptHi);
          for (;;) {
            const t = keep & -keep;
            // Bits before the next stored coefficient (all that are left after the last one).
            let n = popcount(t === 0 ? m : m & (t - 1));
            while (n > 0) {
              if (bits === 0) {
                r.buf = buf, r.bits = bits, r.pos = pos, r.fill();
                buf = r.buf, bits = r.bits, pos = r.pos, end = r.markerPos < 0 ? end : 0;
              }
              const take = n < bits ? n : bits;
              bits -= take;
              n -= take;
            }
            if (t === 0) break;
            m &= ~((t - 1) | t);
            keep ^= t;
            if (bits < 1) {
              r.buf = buf, r.bits = bits, r.pos = pos, r.fill();
              buf = r.buf, bits = r.bits, pos = r.pos, end = r.markerPos < 0 ? end : 0;
            }
            bits--;
            if (((buf >>> bits) & 1) !== 0) {
              const z = zslot[first + 31 - Math.clz32(t)]!;
              const v = coefs[base + z]!;
              if ((v & p1) === 0) coefs[base + z] = v >= 0 ? v + p1 : v + m1;
            }
          }
        }
        eobrun--;
      }
      gate.eobrun = eobrun;
      nz[2 * b] = lo;
      nz[2 * b + 1] = hi;
      r.buf = buf;
      r.bits = bits;
      r.pos = pos;
    }
  }
}
