/**
 * The fast entropy decoders (src/image/jpeg/entropy.ts: combined Huffman table, bit buffer in
 * locals, whole-scan loops, skipped correction bits) against plain ones written here the way
 * jdhuff.c / jdphuff.c read, on random Huffman tables (long codes included) and random entropy
 * data (stuffed 0xFF, markers, running out): same coefficients, same bits consumed. Random
 * bytes are fine input, since both must agree on damaged data too; the plain progressive
 * decoder keeps every coefficient and tests "nonzero" on its value, as libjpeg does, while the
 * fast one is also run keeping only a reduced scale's few.
 */
import { describe, expect, it } from 'vitest';
import { BitReader, buildHuffman, FAST_BITS, type HuffmanTable } from '../../src/image/jpeg/bits';
import { acFirstScan, acRefineScan, decodeBlockFast, type McuGate } from '../../src/image/jpeg/entropy';

const NATURAL = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35,
  42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62,
  63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
];

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** A valid (Kraft) table with `n` symbols drawn from `pick`, code lengths spread up to 16. */
function randomTable(rand: () => number, isDc: boolean): HuffmanTable {
  const counts = new Uint8Array(16);
  let space = 1 << 16; // free code space in units of 2^-16
  let total = 0;
  const want = isDc ? 4 + Math.floor(rand() * 12) : 20 + Math.floor(rand() * 200);
  for (let len = 1; len <= 16 && total < want; len++) {
    const unit = 1 << (16 - len);
    // Keep some space for longer codes unless this is the last chance.
    const room = Math.floor(space / unit) - (len < 16 ? 1 : 0);
    const n = Math.max(0, Math.min(room, want - total, Math.floor(rand() * (len < 4 ? 2 : len < 12 ? 12 : 40))));
    counts[len - 1] = n;
    space -= n * unit;
    total += n;
  }
  const symbols = Uint8Array.from({ length: total }, () => (isDc ? Math.floor(rand() * 16) : Math.floor(rand() * 256)));
  // Make sure the common symbols exist: EOB, ZRL and small sizes.
  if (!isDc && total >= 3) symbols.set([0x00, 0xf0, 0x01]);
  return buildHuffman({ counts, symbols }, isDc);
}

/** Entropy-coded bytes: random, with 0xFF mostly stuffed, sometimes a marker, fill or end. */
function randomData(rand: () => number, length: number): Uint8Array {
  const out: number[] = [];
  while (out.length < length) {
    const b = Math.floor(rand() * 256);
    out.push(b);
    if (b === 0xff) {
      const r = rand();
      if (r < 0.85) out.push(0);
      else if (r < 0.92) out.push(0xff, 0);
      else out.push(0xd0 + Math.floor(rand() * 10)); // RSTn, EOI or SOI: data ends here
    }
  }
  return Uint8Array.from(out);
}

/** jdhuff.c decode_mcu_slow for one block, bit by bit through BitReader. */
function plainBlock(r: BitReader, dc: HuffmanTable, ac: HuffmanTable, pred: number, blk: Int16Array, zslot: Int8Array): number {
  const t = r.decode(dc);
  pred = (pred + (t ? r.receiveExtend(t) : 0)) | 0;
  if (zslot[0]! >= 0) blk[zslot[0]!] = pred;
  for (let k = 1; k < 64; k++) {
    const rs = r.decode(ac);
    const s = rs & 15;
    const run = rs >> 4;
    if (s !== 0) {
      k += run;
      const v = r.receiveExtend(s);
      if (zslot[k]! >= 0) blk[zslot[k]!] = v;
    } else {
      if (run !== 15) break;
      k += 15;
    }
  }
  return pred;
}

/** jdphuff.c decode_mcu_AC_first / _refine over `blocks` blocks of 64 coefficients (natural order). */
function plainAcScan(r: BitReader, ac: HuffmanTable, coefs: Int16Array, blocks: number, ss: number, se: number, ah: number, al: number): void {
  let eobrun = 0;
  const p1 = 1 << al;
  const m1 = -1 << al;
  for (let b = 0; b < blocks; b++) {
    if (r.exhausted) continue;
    const base = b * 64;
    if (ah === 0) {
      if (eobrun > 0) {
        eobrun--;
        continue;
      }
      for (let k = ss; k <= se; k++) {
        const sym = r.decode(ac);
        const run = sym >> 4;
        const s = sym & 15;
        if (s !== 0) {
          k += run;
          coefs[base + NATURAL[k]!] = r.receiveExtend(s) << al;
        } else if (run === 15) k += 15;
        else {
          eobrun = (1 << run) + (run ? r.getBits(run) : 0) - 1;
          break;
        }
      }
      continue;
    }
    const correct = (z: number): void => {
      if (r.getBit()) {
        const v = coefs[base + z]!;
        if ((v & p1) === 0) coefs[base + z] = v >= 0 ? v + p1 : v + m1;
      }
    };
    let k = ss;
    if (eobrun === 0) {
      for (; k <= se; k++) {
        const sym = r.decode(ac);
        let run = sym >> 4;
        let s = sym & 15;
        if (s !== 0) s = r.getBit() ? p1 : m1;
        else if (run !== 15) {
          eobrun = (1 << run) + (run ? r.getBits(run) : 0);
          break;
        }
        do {
          const z = NATURAL[k]!;
          if (coefs[base + z] !== 0) correct(z);
          else if (--run < 0) break;
          k++;
        } while (k <= se);
        if (s !== 0) coefs[base + NATURAL[k]!] = s;
      }
    }
    if (eobrun > 0) {
      for (; k <= se; k++) if (coefs[base + NATURAL[k]!] !== 0) correct(NATURAL[k]!);
      eobrun--;
    }
  }
}

/**
 * Where a reader is in the bit stream: data bits it has taken in (a stuffed FF 00 is one byte),
 * plus zero padding past a marker, minus those still buffered. How far ahead it has buffered
 * may differ (the fast loops leave an 0xFF to BitReader.fill), which nothing observes.
 */
function state(r: BitReader): { consumed: number; exhausted: boolean } {
  let n = 0;
  for (let p = 0; p < r.pos; n += 8) {
    if (r.data[p] === 0xff) {
      let q = p + 1;
      while (r.data[q] === 0xff) q++;
      p = q + 1;
    } else p++;
  }
  return { consumed: n + r.padded - r.bits, exhausted: r.exhausted };
}
const identity = Int8Array.from(NATURAL);
/** What a reduced decode keeps: the 2 x 2 corner (natural 0, 1, 8, 9), as at 1/4 for 4:2:0 luma. */
const corner = (() => {
  const slots = new Int8Array(64).fill(-1);
  [0, 1, 8, 9].forEach((z, i) => (slots[z] = i));
  return Int8Array.from(NATURAL, (z) => slots[z]!);
})();

describe('fast entropy decoding', () => {
  it('tables: long codes are in play (the fast table covers at most FAST_BITS)', () => {
    const rand = rng(7);
    let long = 0;
    for (let i = 0; i < 50; i++) {
      const t = randomTable(rand, false);
      for (let l = FAST_BITS + 1; l <= 16; l++) if (t.maxcode[l]! >= 0) long++;
    }
    expect(long).toBeGreaterThan(50);
  });

  it('sequential blocks: same coefficients, predictor and bits consumed as the plain decoder', () => {
    let blocks = 0;
    let pastMarker = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const rand = rng(seed);
      const dc = randomTable(rand, true);
      const ac = randomTable(rand, false);
      const data = randomData(rand, 50 + Math.floor(rand() * 400));
      const zslot = seed % 3 === 0 ? corner : identity;
      const size = zslot === corner ? 4 : 64;
      const a = new BitReader(data, 0);
      const b = new BitReader(data, 0);
      let pa = 0;
      let pb = 0;
      for (let n = 0; n < 40 && !a.exhausted; n++, blocks++) {
        const ba = new Int16Array(size);
        const bb = new Int16Array(size);
        pa = plainBlock(a, dc, ac, pa, ba, zslot);
        pb = decodeBlockFast(b, dc, ac, pb, bb, 0, zslot);
        expect(pb, `seed ${seed} block ${n}`).toBe(pa);
        expect(Array.from(bb), `seed ${seed} block ${n}`).toEqual(Array.from(ba));
        expect(state(b), `seed ${seed} block ${n}`).toEqual(state(a));
      }
      if (a.markerPos >= 0) pastMarker++;
    }
    expect(blocks).toBeGreaterThan(2000);
    expect(pastMarker).toBeGreaterThan(50); // the marker / zero-padding path is exercised
  });

  it('progressive AC first + refinement scans: the stored coefficients and bits consumed match, at full and reduced scale', () => {
    let checked = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const rand = rng(1000 + seed);
      const blocks = 1 + Math.floor(rand() * 30);
      const reduced = seed % 2 === 0;
      const zslot = reduced ? corner : identity;
      const kept = reduced ? 4 : 64;
      const ref = new Int16Array(blocks * 64);
      const fast = new Int16Array(blocks * kept);
      const nz = new Uint32Array(blocks * 2);
      // A libjpeg-like script: bands with successive approximation, then refinements down to 0.
      const al0 = 1 + Math.floor(rand() * 3);
      const ss0 = 1 + Math.floor(rand() * 3);
      const scans: Array<[number, number, number, number]> = [
        [1, ss0 - 1 >= 1 ? ss0 - 1 : 1, 0, al0],
        [ss0, 63, 0, al0],
      ];
      if (ss0 === 1) scans.shift();
      for (let al = al0; al > 0; al--) scans.push([1, 63, al, al - 1]);
      for (const [ss, se, ah, al] of scans) {
        const ac = randomTable(rand, false);
        const data = randomData(rand, 20 + Math.floor(rand() * 300));
        const a = new BitReader(data, 0);
        const b = new BitReader(data, 0);
        plainAcScan(a, ac, ref, blocks, ss, se, ah, al);
        const gate: McuGate = { eobrun: 0, beforeMcu: () => !b.exhausted };
        const grid = { rows: 1, cols: blocks, stride: blocks };
        if (ah === 0) acFirstScan(b, gate, grid, ac, fast, kept, zslot, nz, ss, se, al);
        else acRefineScan(b, gate, grid, ac, fast, kept, zslot, nz, ss, se, 1 << al, -1 << al);
        expect(state(b), `seed ${seed} scan ${ss}-${se} ${ah}/${al}`).toEqual(state(a));
        for (let blk = 0; blk < blocks; blk++) {
          for (let k = 0; k < 64; k++) {
            const z = zslot[k]!;
            if (z < 0) continue;
            expect(fast[blk * kept + z], `seed ${seed} block ${blk} k ${k}`).toBe(ref[blk * 64 + NATURAL[k]!]);
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(20000);
  });
});
