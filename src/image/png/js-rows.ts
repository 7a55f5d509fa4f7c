/**
 * Scanlines in JS: our own zlib inflater, streaming with bounded memory, and PNG's filters
 * undone. The decoder reads rows with zlib built to wasm (./wasm-rows.ts) where its module is
 * loaded; this serves where it is not (Node tools that import src/image without the .wasm
 * loader) and is the tests' independent oracle for it: both must agree, bytes and refusals,
 * on every file.
 */
import { badChecksum, badData, badFilter, endedEarly, INFLATE_SLACK, tooMuchData, truncated, typeAt, u32, type RowReader } from './rows';

/** Rows from JsInflater, unfiltered in JS. */
export class JsRows implements RowReader {
  private readonly inflater: JsInflater;
  private prev: Uint8Array;
  private cur: Uint8Array;

  constructor(
    bytes: Uint8Array,
    idat: number,
    rowBytes: number,
    private readonly bpp: number,
  ) {
    this.inflater = new JsInflater(bytes, idat);
    this.prev = new Uint8Array(rowBytes);
    this.cur = new Uint8Array(rowBytes);
  }

  pass(n: number): void {
    this.prev.fill(0, 0, n);
  }

  row(n: number, y: number): Uint8Array {
    const cur = this.cur;
    this.inflater.readExactly(cur, n);
    unfilter(cur, this.prev, n - 1, this.bpp, y);
    this.cur = this.prev;
    this.prev = cur;
    return cur;
  }

  finish(): void {
    this.inflater.finish();
  }

  /** Nothing to let go of: this reader lives only as long as its decode. */
  close(): void {}
}

/**
 * Undoes the filter of `cur` (filter byte at 0, then `n` bytes) against `prev` (same layout,
 * zeros for the first row of an image or pass). `bpp`: bytes per complete pixel, at least 1.
 */
export function unfilter(cur: Uint8Array, prev: Uint8Array, n: number, bpp: number, row: number): void {
  const filter = cur[0]!;
  const end = n + 1;
  switch (filter) {
    case 0:
      return;
    case 1:
      for (let i = bpp + 1; i < end; i++) cur[i] = cur[i]! + cur[i - bpp]!;
      return;
    case 2:
      for (let i = 1; i < end; i++) cur[i] = cur[i]! + prev[i]!;
      return;
    case 3: {
      let i = 1;
      for (; i <= bpp && i < end; i++) cur[i] = cur[i]! + (prev[i]! >> 1);
      for (; i < end; i++) cur[i] = cur[i]! + ((cur[i - bpp]! + prev[i]!) >> 1);
      return;
    }
    case 4: {
      let i = 1;
      for (; i <= bpp && i < end; i++) cur[i] = cur[i]! + prev[i]!;
      for (; i < end; i++) {
        const a = cur[i - bpp]!;
        const b = prev[i]!;
        const c = prev[i - bpp]!;
        // |p - a|, |p - b|, |p - c| for p = a + b - c, without Math.abs.
        let pa = b - c;
        let pb = a - c;
        let pc = pa + pb;
        if (pa < 0) pa = -pa;
        if (pb < 0) pb = -pb;
        if (pc < 0) pc = -pc;
        cur[i] = cur[i]! + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
      }
      return;
    }
    default:
      throw badFilter(filter, row);
  }
}


/** Window: 32 KB of history plus room for a batch of output; a symbol writes at most 258 bytes. */
const HISTORY = 32768;
const WINDOW = HISTORY + 131072 + 258;
const FILL_LIMIT = WINDOW - 258;
/** Table sizes of zlib's inftrees.h (ENOUGH_LENS, ENOUGH_DISTS) for 9- and 6-bit root tables. */
const LIT_ROOT = 9;
const DIST_ROOT = 6;
const LIT_TABLE = 852;
const DIST_TABLE = 592;
/** Bytes one JsInflater allocates (window, code tables, scratch). */
export const JS_INFLATER_BYTES = WINDOW + 4 * (LIT_TABLE + DIST_TABLE + 128) + 320 + 64;

// Root tables of 9 and 6 bits, and 7 for the code-length code: DEPTH covers the largest.
const LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEN_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193,
  12289, 16385, 24577,
];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CODE_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

class BadData extends Error {}

/**
 * Canonical Huffman decoding table for `n` code lengths, zlib style: a root table indexed by
 * the next `root` bits; entries are (symbol << 8) | length, or links (offset << 8) | 16 | bits
 * to a second-level table for longer codes. Unused entries are 0 (an invalid code). Refuses
 * over-subscribed codes and incomplete ones (but for a single code of length 1), as zlib does.
 */
/** Scratch space of buildTable (synchronous, so one set serves every decode). */
const COUNT = new Uint16Array(16);
const NEXT = new Uint16Array(16);
const CODES_OF = new Int32Array(320);
const DEPTH = new Uint8Array(1 << 9);

function buildTable(lengths: Uint8Array, n: number, root: number, table: Int32Array, lengthCodes = false): void {
  const count = COUNT.fill(0);
  for (let i = 0; i < n; i++) count[lengths[i]!]!++;
  count[0] = 0;
  let max = 15;
  while (max > 0 && count[max] === 0) max--;
  table.fill(0);
  if (max === 0) return; // no codes: everything decodes as invalid
  let left = 1;
  for (let len = 1; len <= 15; len++) {
    left = (left << 1) - count[len]!;
    if (left < 0) throw new BadData('over-subscribed code');
  }
  if (left > 0 && (lengthCodes || max !== 1)) throw new BadData('incomplete code');
  const next = NEXT;
  for (let len = 1, code = 0; len <= 15; len++) {
    code = (code + count[len - 1]!) << 1;
    next[len] = code;
  }
  const rootSize = 1 << root;
  const rootMask = rootSize - 1;
  const codes = CODES_OF;
  const depth = DEPTH.fill(0, 0, rootSize);
  for (let s = 0; s < n; s++) {
    const len = lengths[s]!;
    if (!len) continue;
    let c = next[len]!++;
    let r = 0;
    for (let i = 0; i < len; i++, c >>= 1) r = (r << 1) | (c & 1);
    codes[s] = r;
    if (len > root) depth[r & rootMask] = Math.max(depth[r & rootMask]!, len - root);
  }
  let pos = rootSize;
  for (let p = 0; p < rootSize; p++) {
    const d = depth[p]!;
    if (!d) continue;
    if (pos + (1 << d) > table.length) throw new BadData('code table overflow');
    table[p] = (pos << 8) | 16 | d;
    pos += 1 << d;
  }
  for (let s = 0; s < n; s++) {
    const len = lengths[s]!;
    if (!len) continue;
    const r = codes[s]!;
    const entry = (s << 8) | len;
    if (len <= root) {
      for (let i = r; i < rootSize; i += 1 << len) table[i] = entry;
    } else {
      const link = table[r & rootMask]!;
      const base = link >>> 8;
      const size = 1 << (link & 15);
      for (let i = r >>> root; i < size; i += 1 << (len - root)) table[base + i] = entry;
    }
  }
}

const FIXED_LIT = new Int32Array(1 << LIT_ROOT);
const FIXED_DIST = new Int32Array(1 << DIST_ROOT);
{
  const l = new Uint8Array(288);
  l.fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288);
  buildTable(l, 288, LIT_ROOT, FIXED_LIT);
  buildTable(new Uint8Array(32).fill(5), 32, DIST_ROOT, FIXED_DIST);
}

const HEADER = 0;
const STORED = 1;
const CODES = 2;
const END = 3;

/**
 * A zlib inflater pulling from the data of the run of IDAT chunks at `pos` (the last one may
 * be cut by the end of the file), with a fixed window: the reader asks for bytes, and it
 * inflates up to ~128 KB ahead. Past the end of the input its bit reader yields zeros and
 * counts them, so truncation is found without a check per bit.
 */
export class JsInflater {
  /** Offset of the chunk after the current IDAT. */
  private nextChunk: number;
  private ip: number;
  private iend: number;
  private bitbuf = 0;
  private bitcnt = 0;
  /** Zero bytes fed to the bit reader past the end of the input. */
  private overrun = 0;
  private readonly win = new Uint8Array(WINDOW);
  private wpos = 0;
  private rpos = 0;
  private mode = HEADER;
  private last = false;
  private stored = 0;
  private lit: Int32Array = FIXED_LIT;
  private dist: Int32Array = FIXED_DIST;
  private readonly litTable = new Int32Array(LIT_TABLE);
  private readonly distTable = new Int32Array(DIST_TABLE);
  private readonly lens = new Uint8Array(320);
  private readonly clTable = new Int32Array(128);
  private adlerA = 1;
  private adlerB = 0;
  private total = 0;
  private headerRead = false;
  /** The input ran out before the stream's end. */
  private inputEnded = false;

  constructor(
    private readonly bytes: Uint8Array,
    pos: number,
  ) {
    this.ip = this.iend = this.nextChunk = pos;
  }

  /** The next input byte, from the next IDAT of the run if need be; 0 (counted) past the end. */
  private nextByte(): number {
    const bytes = this.bytes;
    while (this.ip >= this.iend) {
      const pos = this.nextChunk;
      if (pos + 8 > bytes.length || typeAt(bytes, pos) !== 'IDAT') {
        this.overrun++;
        if (this.overrun > 8) throw new Truncated();
        return 0;
      }
      const length = u32(bytes, pos);
      this.ip = pos + 8;
      this.iend = Math.min(this.ip + length, bytes.length);
      this.nextChunk = this.ip + length + 4;
    }
    return bytes[this.ip++]!;
  }

  private bits(n: number): number {
    while (this.bitcnt < n) {
      this.bitbuf |= this.nextByte() << this.bitcnt;
      this.bitcnt += 8;
    }
    const v = this.bitbuf & ((1 << n) - 1);
    this.bitbuf >>>= n;
    this.bitcnt -= n;
    return v;
  }

  /** Whether more bits were consumed than the input holds. */
  private overran(): boolean {
    return this.overrun * 8 > this.bitcnt;
  }

  /** Fills dst[0, n) or throws: the image data must hold every scanline. */
  readExactly(dst: Uint8Array, n: number): void {
    let off = 0;
    while (off < n) {
      if (this.rpos === this.wpos) {
        if (this.inputEnded) throw truncated();
        if (this.mode === END) throw endedEarly();
        this.fill();
        continue;
      }
      const k = Math.min(n - off, this.wpos - this.rpos);
      dst.set(this.win.subarray(this.rpos, this.rpos + k), off);
      this.rpos += k;
      off += k;
    }
  }

  /** See RowReader.finish. */
  finish(): void {
    let extra = this.wpos - this.rpos;
    for (;;) {
      if (extra > INFLATE_SLACK) throw tooMuchData();
      if (this.mode === END || this.inputEnded) return;
      this.rpos = this.wpos;
      this.fill();
      extra += this.wpos - this.rpos;
    }
  }

  /**
   * Inflates into the window until it is full, the stream ends or the input runs out (then
   * `inputEnded`, with only what real input decodes to in the window).
   */
  private fill(): void {
    if (this.wpos > HISTORY) {
      // Keep the last 32 KB as history; the reader has taken everything before.
      this.win.copyWithin(0, this.wpos - HISTORY, this.wpos);
      this.wpos = this.rpos = HISTORY;
    }
    const start = this.wpos;
    try {
      if (!this.headerRead) {
        const cmf = this.bits(8);
        const flg = this.bits(8);
        if (this.overran()) throw new Truncated();
        if ((cmf & 0x0f) !== 8 || cmf >> 4 > 7 || ((cmf << 8) | flg) % 31 !== 0) throw new BadData('bad zlib header');
        if (flg & 0x20) throw new BadData('preset dictionary');
        this.headerRead = true;
      }
      while (this.wpos < FILL_LIMIT && this.mode !== END) {
        if (this.mode === HEADER) this.blockHeader();
        else if (this.mode === STORED) this.copyStored();
        else this.decodeCodes();
      }
    } catch (err) {
      if (err instanceof Truncated) this.inputEnded = true;
      else if (err instanceof BadData) throw badData(err.message);
      else throw err;
    }
    this.adler(start, this.wpos);
    if (this.mode === END) this.checkAdler();
  }

  private blockHeader(): void {
    if (this.last) {
      this.mode = END;
      return;
    }
    this.last = this.bits(1) === 1;
    const type = this.bits(2);
    if (type === 0) {
      this.bitbuf >>>= this.bitcnt & 7;
      this.bitcnt -= this.bitcnt & 7;
      const len = this.bits(16);
      const nlen = this.bits(16);
      if (this.overran()) throw new Truncated();
      if ((len ^ 0xffff) !== nlen) throw new BadData('stored block length');
      this.stored = len;
      this.mode = STORED;
    } else if (type === 1) {
      this.lit = FIXED_LIT;
      this.dist = FIXED_DIST;
      this.mode = CODES;
    } else if (type === 2) {
      this.dynamicTables();
      this.mode = CODES;
    } else {
      throw new BadData('block type 3');
    }
  }

  private dynamicTables(): void {
    const nlit = this.bits(5) + 257;
    const ndist = this.bits(5) + 1;
    const nclen = this.bits(4) + 4;
    if (nlit > 286 || ndist > 30) throw new BadData('too many length or distance codes');
    const lens = this.lens;
    lens.fill(0, 0, 19);
    for (let i = 0; i < nclen; i++) lens[CODE_ORDER[i]!] = this.bits(3);
    if (this.overran()) throw new Truncated();
    const clTable = this.clTable;
    buildTable(lens, 19, 7, clTable, true);
    const n = nlit + ndist;
    lens.fill(0);
    for (let i = 0; i < n; ) {
      while (this.bitcnt < 7) {
        this.bitbuf |= this.nextByte() << this.bitcnt;
        this.bitcnt += 8;
      }
      const e = clTable[this.bitbuf & 127]!;
      const len = e & 15;
      if (!len) throw new BadData('bad code lengths code');
      this.bitbuf >>>= len;
      this.bitcnt -= len;
      const sym = e >>> 8;
      if (sym < 16) {
        lens[i++] = sym;
        continue;
      }
      let value = 0;
      let repeat: number;
      if (sym === 16) {
        if (i === 0) throw new BadData('repeat with no first length');
        value = lens[i - 1]!;
        repeat = 3 + this.bits(2);
      } else if (sym === 17) repeat = 3 + this.bits(3);
      else repeat = 11 + this.bits(7);
      if (i + repeat > n) throw new BadData('too many code lengths');
      lens.fill(value, i, i + repeat);
      i += repeat;
      if (this.overran()) throw new Truncated();
    }
    if (this.overran()) throw new Truncated();
    if (!lens[256]) throw new BadData('no end-of-block code');
    buildTable(lens, nlit, LIT_ROOT, this.litTable);
    buildTable(lens.subarray(nlit, n), ndist, DIST_ROOT, this.distTable);
    this.lit = this.litTable;
    this.dist = this.distTable;
  }

  private copyStored(): void {
    const win = this.win;
    let k = Math.min(this.stored, WINDOW - this.wpos);
    this.stored -= k;
    // Whole bytes left in the bit buffer come first.
    while (k > 0 && this.bitcnt >= 8) {
      win[this.wpos++] = this.bitbuf & 0xff;
      this.bitbuf >>>= 8;
      this.bitcnt -= 8;
      k--;
    }
    while (k > 0) {
      if (this.ip >= this.iend) {
        const b = this.nextByte();
        if (this.overrun) throw new Truncated();
        win[this.wpos++] = b;
        k--;
        continue;
      }
      const take = Math.min(k, this.iend - this.ip);
      win.set(this.bytes.subarray(this.ip, this.ip + take), this.wpos);
      this.ip += take;
      this.wpos += take;
      k -= take;
    }
    if (this.stored === 0) this.mode = HEADER;
  }

  /** The hot loop: literals and matches until the window is full or the block ends. */
  private decodeCodes(): void {
    const win = this.win;
    const lit = this.lit;
    const dist = this.dist;
    const bytes = this.bytes;
    let bitbuf = this.bitbuf;
    let bitcnt = this.bitcnt;
    let ip = this.ip;
    let iend = this.iend;
    let wpos = this.wpos;
    /** Zero bytes read past the end of the input: a symbol using any of them is not data. */
    let phantom = this.overrun;
    try {
      while (wpos < FILL_LIMIT) {
        while (bitcnt < 24) {
          let b: number;
          if (ip < iend) b = bytes[ip++]!;
          else {
            this.ip = ip;
            b = this.nextByte();
            ip = this.ip;
            iend = this.iend;
            phantom = this.overrun;
          }
          bitbuf |= b << bitcnt;
          bitcnt += 8;
        }
        let e = lit[bitbuf & 511]!;
        if (e & 16) e = lit[(e >>> 8) + ((bitbuf >>> LIT_ROOT) & ((1 << (e & 15)) - 1))]!;
        let len = e & 15;
        if (len === 0) throw new BadData('invalid literal/length code');
        bitbuf >>>= len;
        bitcnt -= len;
        if (phantom !== 0 && phantom * 8 > bitcnt) throw new Truncated();
        let sym = e >>> 8;
        if (sym < 256) {
          win[wpos++] = sym;
          continue;
        }
        if (sym === 256) {
          this.mode = HEADER;
          break;
        }
        sym -= 257;
        if (sym >= 29) throw new BadData('invalid literal/length code');
        let length = LEN_BASE[sym]!;
        const lx = LEN_EXTRA[sym]!;
        if (lx) {
          length += bitbuf & ((1 << lx) - 1);
          bitbuf >>>= lx;
          bitcnt -= lx;
        }
        while (bitcnt < 24) {
          let b: number;
          if (ip < iend) b = bytes[ip++]!;
          else {
            this.ip = ip;
            b = this.nextByte();
            ip = this.ip;
            iend = this.iend;
            phantom = this.overrun;
          }
          bitbuf |= b << bitcnt;
          bitcnt += 8;
        }
        e = dist[bitbuf & 63]!;
        if (e & 16) e = dist[(e >>> 8) + ((bitbuf >>> DIST_ROOT) & ((1 << (e & 15)) - 1))]!;
        len = e & 15;
        if (len === 0) throw new BadData('invalid distance code');
        bitbuf >>>= len;
        bitcnt -= len;
        sym = e >>> 8;
        if (sym >= 30) throw new BadData('invalid distance code');
        let d = DIST_BASE[sym]!;
        const dx = DIST_EXTRA[sym]!;
        if (dx) {
          if (bitcnt < dx) {
            this.ip = ip;
            this.bitbuf = bitbuf;
            this.bitcnt = bitcnt;
            while (this.bitcnt < dx) {
              this.bitbuf |= this.nextByte() << this.bitcnt;
              this.bitcnt += 8;
            }
            bitbuf = this.bitbuf;
            bitcnt = this.bitcnt;
            ip = this.ip;
            iend = this.iend;
            phantom = this.overrun;
          }
          d += bitbuf & ((1 << dx) - 1);
          bitbuf >>>= dx;
          bitcnt -= dx;
        }
        if (phantom !== 0 && phantom * 8 > bitcnt) throw new Truncated();
        if (d > wpos) throw new BadData('distance too far back');
        let s = wpos - d;
        const stop = wpos + length;
        while (wpos < stop) win[wpos++] = win[s++]!;
      }
    } finally {
      this.bitbuf = bitbuf;
      this.bitcnt = bitcnt;
      this.ip = ip;
      this.wpos = wpos;
    }
  }

  private adler(start: number, end: number): void {
    const win = this.win;
    let a = this.adlerA;
    let b = this.adlerB;
    for (let i = start; i < end; ) {
      const stop = Math.min(end, i + 5552);
      for (; i < stop; i++) {
        a += win[i]!;
        b += a;
      }
      a %= 65521;
      b %= 65521;
    }
    this.adlerA = a;
    this.adlerB = b;
    this.total += end - start;
  }

  /** At the end of the stream: the checksum, if the input still holds its 4 bytes. */
  private checkAdler(): void {
    this.bitbuf >>>= this.bitcnt & 7;
    this.bitcnt -= this.bitcnt & 7;
    let sum = 0;
    try {
      for (let i = 0; i < 4; i++) {
        const b = this.bits(8);
        if (this.overran()) return; // cut before its checksum: accepted, as Pillow does
        sum = sum * 256 + b;
      }
    } catch (err) {
      if (err instanceof Truncated) return;
      throw err;
    }
    if (sum !== ((this.adlerB << 16) | this.adlerA) >>> 0) {
      throw badChecksum();
    }
  }
}

/** Internal: the bit reader ran past the end of the input. */
class Truncated extends Error {}
