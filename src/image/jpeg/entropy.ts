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
