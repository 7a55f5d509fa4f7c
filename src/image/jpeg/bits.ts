/**
 * Huffman tables and the entropy-coded-data bit reader, with libjpeg's (jdhuff.c) behaviour on
 * damaged data, because Pillow returns whatever libjpeg makes of it: a code that matches no
 * table entry reads as symbol 0 after consuming 17 bits, and data that runs into a marker is
 * continued with zero bits. Whether any such padding bit was consumed is tracked, because
 * libjpeg then leaves the rest of the restart interval's MCUs at zero (`insufficient`).
 */
import { unprocessableImage } from '../../errors';

/** Bits resolved by one table read; longer codes walk `maxcode` as jdhuff.c does. */
const LOOKAHEAD = 9;

/**
 * Bits of the combined table (`fast`), libjpeg-turbo's idea taken further: one read gives a
 * code's symbol and, when code and magnitude bits fit in FAST_BITS, the extended value too.
 * 10 bits (4 KB a table) covered nearly every symbol of photo-like q75..q95 files.
 */
export const FAST_BITS = 10;
/** `fast` entry: bits 0-4 bits to consume (0: longer code, walk maxcode), 5-8 run, 9-12 size. */
export const FAST_PENDING = 1 << 13;
/** Bytes one table holds (for the decoder's memory accounting). */
export const HUFFMAN_TABLE_BYTES = (2 << LOOKAHEAD) + (4 << FAST_BITS) + 2 * 4 * 18 + 256;

export interface HuffmanTable {
  /** (length << 8) | symbol for codes of <= LOOKAHEAD bits, by their next LOOKAHEAD bits; 0: longer or invalid. */
  lookup: Uint16Array;
  /** Largest code of each length (index 1..16), -1 when none; [17] is a sentinel. */
  maxcode: Int32Array;
  /** symbol index = code + valoffset[length]. */
  valoffset: Int32Array;
  /** 256 symbols; the ones past the table's count are 0, as libjpeg pre-zeroes them. */
  values: Uint8Array;
  /**
   * By the next FAST_BITS bits: (value << 16) | (size << 9) | (run << 5) | bits, where bits
   * counts code + magnitude; with FAST_PENDING set, bits is the code's alone and the `size`
   * magnitude bits are still to be read; 0 for codes longer than FAST_BITS (or none).
   */
  fast: Int32Array;
}

/** As defined by DHT: 16 counts and the symbols, not yet validated (that depends on DC/AC use). */
export interface HuffmanSpec {
  counts: Uint8Array;
  symbols: Uint8Array;
}

/** jpeg_make_d_derived_tbl: the checks that make libjpeg refuse a table are fatal here too. */
export function buildHuffman(spec: HuffmanSpec, isDc: boolean, into?: HuffmanTable): HuffmanTable {
  // Rebuilt in place when a slot is redefined, so a decode allocates at most one table per slot
  // (a progressive file may define tables before every scan).
  const lookup = into ? into.lookup.fill(0) : new Uint16Array(1 << LOOKAHEAD);
  const maxcode = into ? into.maxcode.fill(-1) : new Int32Array(18).fill(-1);
  const valoffset = into ? into.valoffset.fill(0) : new Int32Array(18);
  const values = into ? into.values.fill(0) : new Uint8Array(256);
  const fast = into ? into.fast.fill(0) : new Int32Array(1 << FAST_BITS);
  values.set(spec.symbols.subarray(0, 256));
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    const n = spec.counts[len - 1]!;
    if (n > 0) {
      valoffset[len] = k - code;
      for (let i = 0; i < n; i++, k++, code++) {
        if (len <= LOOKAHEAD) {
          const shift = LOOKAHEAD - len;
          lookup.fill((len << 8) | values[k]!, code << shift, (code + 1) << shift);
        }
        if (len <= FAST_BITS) fillFast(fast, code, len, values[k]!);
      }
      maxcode[len] = code - 1;
    }
    if (code > 1 << len) throw unprocessableImage('corrupt JPEG: bad Huffman table');
    code <<= 1;
  }
  maxcode[17] = 0x7fffffff;
  if (isDc) {
    for (let i = 0; i < k; i++) if (values[i]! > 15) throw unprocessableImage('corrupt JPEG: bad DC Huffman table');
  }
  return { lookup, maxcode, valoffset, values, fast };
}

/** HUFF_EXTEND: `v`, the `s` magnitude bits, as the signed value they code. */
const extend = (v: number, s: number): number => (v < 1 << (s - 1) ? v - (1 << s) + 1 : v);

/** The `fast` entries of one code: every FAST_BITS-bit continuation of it. */
function fillFast(fast: Int32Array, code: number, len: number, sym: number): void {
  const s = sym & 15;
  const head = (s << 9) | ((sym >> 4) << 5);
  const free = FAST_BITS - len;
  for (let tail = 0; tail < 1 << free; tail++) {
    let e: number;
    if (s === 0) e = head | len;
    else if (len + s <= FAST_BITS) e = (extend((tail >> (free - s)) & ((1 << s) - 1), s) << 16) | head | (len + s);
    else e = FAST_PENDING | head | len;
    fast[(code << free) | tail] = e;
  }
}

/**
 * A code longer than FAST_BITS, read from the top `bits` bits of `buf` (at least 17 there):
 * (bits consumed << 8) | symbol, jdhuff.c's jpeg_huff_decode walk, 17 bits and symbol 0 for no code.
 */
export function slowSymbol(t: HuffmanTable, buf: number, bits: number): number {
  const maxcode = t.maxcode;
  for (let l = FAST_BITS + 1; l <= 16; l++) {
    const code = (buf >>> (bits - l)) & ((1 << l) - 1);
    if (code <= maxcode[l]!) return (l << 8) | t.values[(code + t.valoffset[l]!) & 0xff]!;
  }
  return 17 << 8;
}

export class BitReader {
  /** Valid bits are the low `bits` bits of `buf`. */
  buf = 0;
  bits = 0;
  /** Zero bits appended since a marker stopped the data; consumed past the data iff padded > bits. */
  padded = 0;
  /** Offset of the marker that ends the data (0xFF of it), -1 until reached. */
  markerPos = -1;

  constructor(
    readonly data: Uint8Array,
    public pos: number,
  ) {}

  /** True once a bit past the real data was consumed (libjpeg's insufficient_data). */
  get exhausted(): boolean {
    return this.padded > this.bits;
  }

  fill(): void {
    const data = this.data;
    while (this.bits <= 24) {
      let b = 0;
      if (this.markerPos < 0) {
        const p = this.pos;
        if (p >= data.length) {
          // The caller has checked that the file reaches EOI, so this is only reached past a
          // marker-less end inside a corrupt structure; treat as a marker.
          this.markerPos = p;
          this.padded += 8;
        } else {
          b = data[p]!;
          if (b === 0xff) {
            let q = p + 1;
            // FF FF ... is fill before a marker; FF 00 is a stuffed 0xFF data byte.
            while (q < data.length && data[q] === 0xff) q++;
            if (q < data.length && data[q] === 0) this.pos = q + 1;
            else {
              this.markerPos = q - 1;
              b = 0;
              this.padded += 8;
            }
          } else this.pos = p + 1;
        }
      } else this.padded += 8;
      this.buf = (this.buf << 8) | b;
      this.bits += 8;
    }
  }

  getBits(n: number): number {
    if (n === 0) return 0;
    if (this.bits < n) this.fill();
    this.bits -= n;
    return (this.buf >>> this.bits) & ((1 << n) - 1);
  }

  getBit(): number {
    if (this.bits < 1) this.fill();
    this.bits--;
    return (this.buf >>> this.bits) & 1;
  }

  /** HUFF_EXTEND(get_bits(s), s). */
  receiveExtend(s: number): number {
    if (this.bits < s) this.fill();
    this.bits -= s;
    const v = (this.buf >>> this.bits) & ((1 << s) - 1);
    return v < 1 << (s - 1) ? v - (1 << s) + 1 : v;
  }

  decode(t: HuffmanTable): number {
    if (this.bits < 17) this.fill();
    const e = t.lookup[(this.buf >>> (this.bits - LOOKAHEAD)) & ((1 << LOOKAHEAD) - 1)]!;
    if (e !== 0) {
      this.bits -= e >> 8;
      return e & 0xff;
    }
    const maxcode = t.maxcode;
    for (let l = LOOKAHEAD + 1; l <= 16; l++) {
      const code = (this.buf >>> (this.bits - l)) & ((1 << l) - 1);
      if (code <= maxcode[l]!) {
        this.bits -= l;
        return t.values[(code + t.valoffset[l]!) & 0xff]!;
      }
    }
    // No code: libjpeg has read 17 bits by then and fakes a 0 ("the safest result").
    this.bits -= 17;
    return 0;
  }

  /**
   * At a restart boundary (jdhuff.c process_restart + jdmarker.c read_restart_marker and the
   * default resync_to_restart): drop the buffered bits, find the next marker, swallow it when it
   * is the expected RSTn. Returns whether the new interval starts with data (libjpeg keeps its
   * out-of-data flag when it is left facing another marker).
   */
  restart(expected: number): boolean {
    this.buf = 0;
    this.bits = 0;
    this.padded = 0;
    let marker = this.markerPos >= 0 ? this.markerPos : nextMarker(this.data, this.pos);
    this.markerPos = -1;
    for (;;) {
      if (marker < 0 || marker + 1 >= this.data.length) {
        // Out of data: zeros from here on, as at any marker.
        this.pos = this.data.length;
        this.markerPos = this.data.length;
        return false;
      }
      const code = this.data[marker + 1]!;
      let action: number;
      if (code === 0xd0 + expected) action = 1;
      else if (code < 0xc0) action = 2;
      else if (code < 0xd0 || code > 0xd7) action = 3;
      else if (code === 0xd0 + ((expected + 1) & 7) || code === 0xd0 + ((expected + 2) & 7)) action = 3;
      else if (code === 0xd0 + ((expected - 1) & 7) || code === 0xd0 + ((expected - 2) & 7)) action = 2;
      else action = 1;
      if (action === 1) {
        this.pos = marker + 2;
        return true;
      }
      if (action === 3) {
        this.pos = marker;
        this.markerPos = marker;
        return false;
      }
      marker = nextMarker(this.data, marker + 2);
    }
  }

  /** Offset of the marker that follows the data consumed so far (what libjpeg reads next). */
  endMarker(): number {
    return this.markerPos >= 0 ? this.markerPos : nextMarker(this.data, this.pos);
  }
}

/**
 * jdmarker.c next_marker: skips any bytes up to an 0xFF that starts a marker (not FF 00),
 * returning the offset of the last 0xFF before the code, or -1 when the data ends first.
 */
export function nextMarker(data: Uint8Array, pos: number): number {
  for (let i = pos; i < data.length; ) {
    i = data.indexOf(0xff, i);
    if (i < 0) return -1;
    let q = i + 1;
    while (q < data.length && data[q] === 0xff) q++;
    if (q >= data.length) return -1;
    if (data[q] !== 0) return q - 1;
    i = q + 1;
  }
  return -1;
}
