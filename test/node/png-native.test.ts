/**
 * The native-inflate PNG path (src/image/png/native.ts) against the JS decoder: the same
 * pixels or the same error on every PNG fixture, on generated photos and on corrupted and
 * truncated ones (where the fallback to the JS path must be engaged), the RowSink contract
 * across a fallback, and the bound on what the inflater buffers with a decompression bomb.
 *
 * Node's DecompressionStream is not a byte stream, so the native inflater here is an
 * emulation of workerd's (src/workerd/api/streams/compression.c++) over node:zlib: a write
 * inflates all its input into a buffer at once, read or not (no backpressure), and a read
 * waits while that buffer is empty, then takes all of it that fits. bench/png-decode.ts
 * --workerd runs the real one and checks that it gives the JS path's pixels.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createInflate } from 'node:zlib';
import { zlibSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors';
import { decodePngTo, readPngHeader } from '../../src/image/png';
import { pngFile } from '../../models/src/png';
import { DEFAULT_PIECE, decodePngToAsync, nativeMemory, type NativeInflater } from '../../src/image/png/native';
import type { DecodeLimits, RowSink } from '../../src/image/types';

const DIR = new URL('../fixtures/png/', import.meta.url);
const LIMITS: DecodeLimits = { maxPixels: 16_000_000, maxMemoryMB: 64 };

/** workerd's DecompressionStream semantics over node:zlib; `stats.peak`: most output it held. */
function emulated(stats: { peak: number; writes: number }): NativeInflater {
  const z = createInflate();
  let pending = new Uint8Array(0);
  let ended = false;
  let error: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  z.on('data', (d: Buffer) => {
    const next = new Uint8Array(pending.length + d.length);
    next.set(pending);
    next.set(d, pending.length);
    pending = next;
    stats.peak = Math.max(stats.peak, pending.length);
  });
  z.on('error', (err) => {
    error ??= err;
    notify();
  });
  z.on('end', () => {
    ended = true;
    notify();
  });
  z.on('close', () => {
    if (!ended) error ??= new Error('closed');
    notify();
  });
  return {
    async write(piece) {
      if (error) throw error;
      stats.writes++;
      // The write callback comes once zlib has processed the piece and pushed all its output.
      // (On a zlib error the callback never comes: the stream's close ends the wait.)
      await new Promise<void>((resolve, reject) => {
        const fail = (): void => reject(error ?? new Error('closed'));
        z.once('close', fail);
        z.write(piece, (err) => {
          z.off('close', fail);
          if (err) reject(err);
          else resolve();
        });
      });
      notify();
    },
    async close() {
      if (error) throw error;
      await new Promise<void>((resolve, reject) => {
        z.once('end', resolve);
        z.once('close', () => (ended ? resolve() : reject(error ?? new Error('closed'))));
        z.end();
      });
      ended = true;
      notify();
    },
    async read(into) {
      while (pending.length === 0 && !ended && !error) await new Promise<void>((r) => (wake = r));
      if (error) throw error;
      if (pending.length === 0) return { done: true };
      const n = Math.min(into.length, pending.length);
      into.set(pending.subarray(0, n));
      pending = pending.subarray(n);
      return { value: into.subarray(0, n), done: false };
    },
    cancel() {
      error ??= new Error('cancelled');
      z.destroy();
      notify();
    },
  };
}

/** A sink that collects and checks the RowSink contract: whole rows, in order, each once. */
function collector(width: number, height: number): RowSink & { data: Uint8Array; rows: number } {
  const data = new Uint8Array(width * height * 3);
  const sink = {
    data,
    rows: 0,
    write(rows: Uint8Array, y0: number, count: number) {
      if (y0 !== sink.rows || count <= 0) throw new Error(`rows ${y0}+${count} out of order (have ${sink.rows})`);
      data.set(rows.subarray(0, count * width * 3), y0 * width * 3);
      sink.rows += count;
    },
  };
  return sink;
}

type Outcome = { pixels: Uint8Array; native?: boolean } | { status: number; message: string };

function viaJs(bytes: Uint8Array): Outcome {
  try {
    const h = readPngHeader(bytes);
    const sink = collector(h.width, h.height);
    decodePngTo(bytes, h, sink, LIMITS);
    return { pixels: sink.data };
  } catch (err) {
    if (err instanceof ApiError) return { status: err.status, message: err.message };
    throw err;
  }
}

async function viaNative(bytes: Uint8Array, piece = DEFAULT_PIECE, stats = { peak: 0, writes: 0 }): Promise<Outcome> {
  try {
    const h = readPngHeader(bytes);
    const sink = collector(h.width, h.height);
    const { native } = await decodePngToAsync(bytes, h, sink, LIMITS, { piece, inflater: () => emulated(stats) });
    expect(sink.rows).toBe(h.height);
    return { pixels: sink.data, native };
  } catch (err) {
    if (err instanceof ApiError) return { status: err.status, message: err.message };
    throw err;
  }
}

/** The two paths agree (pixels, or status and message); returns whether the native pass gave the image. */
async function agree(bytes: Uint8Array, piece?: number): Promise<boolean | 'error'> {
  const js = viaJs(bytes);
  const nat = await viaNative(bytes, piece);
  if ('status' in js) {
    expect(nat).toEqual(js);
    return 'error';
  }
  expect('pixels' in nat).toBe(true);
  const { pixels, native } = nat as { pixels: Uint8Array; native: boolean };
  expect(Buffer.compare(pixels, js.pixels)).toBe(0);
  return native;
}

// ---- generated PNGs --------------------------------------------------------------------------

/** An 8-bit RGB PNG whose zlib stream is split into IDAT chunks of `split` bytes (0: one). */
const png = (width: number, height: number, idat: Uint8Array, split = 0) => pngFile(width, height, idat, { idatChunkBytes: split });
/** Filtered scanlines of a noisy gradient (all five filter types). */
function scanlines(width: number, height: number, seed = 1): Uint8Array {
  const stride = width * 3;
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = y % 5;
    for (let i = 0; i < stride; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      raw[y * (stride + 1) + 1 + i] = ((i * 7 + y * 3) >> 4) + (seed >>> 29);
    }
  }
  return raw;
}

describe('native inflate gives the JS decoder\'s pixels or errors', () => {
  it('on every PNG fixture (Pillow-checked), with the native pass giving the valid non-interlaced ones', { timeout: 60_000 }, async () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.png')).sort();
    expect(files.length).toBeGreaterThan(100);
    let native = 0;
    let errors = 0;
    for (const f of files) {
      const bytes = new Uint8Array(readFileSync(new URL(f, DIR)));
      const r = await agree(bytes);
      if (r === 'error') errors++;
      else if (r) native++;
    }
    console.log(`${files.length} fixtures: ${native} by the native pass, ${errors} refused alike, the rest by JS (interlaced or fallen back)`);
    expect(native).toBeGreaterThan(50);
    expect(errors).toBeGreaterThan(5);
  });

  it('generated photos over many IDATs, at piece sizes from 1 byte (writes giving no output) to 16 KB', async () => {
    for (const [w, h, split, piece] of [
      [97, 41, 0, 4096],
      [97, 41, 13, 1],
      [300, 200, 1000, 7],
      [300, 200, 65536, 16384],
      [1, 1, 0, 3],
    ] as const) {
      const bytes = png(w, h, zlibSync(scanlines(w, h), { level: 6 }), split);
      expect([w, h, split, piece, await agree(bytes, piece)]).toEqual([w, h, split, piece, true]);
    }
  });

  it('falls back to the JS path, from the start, on corrupt and truncated data', async () => {
    const w = 120;
    const h = 90;
    const z = zlibSync(scanlines(w, h), { level: 6 });
    const cases: Record<string, Uint8Array> = {};
    const badAdler = z.slice();
    badAdler[badAdler.length - 1]! ^= 0x55;
    cases['bad Adler-32 (refused)'] = png(w, h, badAdler, 500);
    cases['no Adler-32 (accepted, as Pillow does)'] = png(w, h, z.subarray(0, z.length - 4), 500);
    cases['cut in the last rows (refused)'] = png(w, h, z.subarray(0, Math.floor(z.length * 0.9)), 500);
    const flipped = z.slice();
    flipped[Math.floor(z.length / 2)]! ^= 0x10;
    cases['a bit flipped mid-stream'] = png(w, h, flipped, 500);
    const lateFlip = z.slice();
    lateFlip[z.length - 12]! ^= 0x08;
    cases['a bit flipped near the end, after most rows went to the sink'] = png(w, h, lateFlip, 500);
    const badFilter = scanlines(w, h);
    badFilter[(w * 3 + 1) * 60] = 9;
    cases['unknown filter type in row 60'] = png(w, h, zlibSync(badFilter), 500);
    const garbage = new Uint8Array(z.length + 20);
    garbage.set(z);
    garbage.fill(0xab, z.length);
    cases['trailing bytes after the zlib stream (accepted)'] = png(w, h, garbage, 500);
    const header = z.slice();
    header[1] = header[1]! | 0x20; // FDICT, check bits now wrong too
    cases['bad zlib header'] = png(w, h, header);
    const outcomes: string[] = [];
    for (const [name, bytes] of Object.entries(cases)) {
      const js = viaJs(bytes);
      const nat = await viaNative(bytes, 256);
      if ('status' in js) expect(nat).toEqual(js);
      else {
        expect('pixels' in nat && Buffer.compare(nat.pixels, js.pixels)).toBe(0);
        outcomes.push(`${name}: ${(nat as { native: boolean }).native ? 'native' : 'fallback'}`);
      }
    }
    // Where the JS path accepts, the native pass gave it or fell back; with a bad checksum it must have fallen back.
    expect(viaJs(cases['bad Adler-32 (refused)']!)).toMatchObject({ status: 422, message: expect.stringMatching(/Adler-32/) });
    expect(viaJs(cases['no Adler-32 (accepted, as Pillow does)']!)).toHaveProperty('pixels');
    expect(outcomes).toContain('no Adler-32 (accepted, as Pillow does): fallback');
    expect(viaJs(cases['trailing bytes after the zlib stream (accepted)']!)).toHaveProperty('pixels');
  });

  it('a sink that throws is not a reason to fall back: its error comes out', async () => {
    const bytes = png(50, 50, zlibSync(scanlines(50, 50)));
    const h = readPngHeader(bytes);
    const boom = new Error('sink full');
    let calls = 0;
    const sink: RowSink = {
      write() {
        if (++calls === 2) throw boom;
      },
    };
    await expect(decodePngToAsync(bytes, h, sink, LIMITS, { inflater: () => emulated({ peak: 0, writes: 0 }) })).rejects.toBe(boom);
    expect(calls).toBe(2);
  });
});

describe('memory', () => {
  it('a decompression bomb: the inflater never holds more than one piece can inflate to, and the JS path refuses it', async () => {
    const bomb = png(100, 100, zlibSync(new Uint8Array(64 * 1024 * 1024), { level: 9 }), 65536); // 64 MB of zeros, ~64 KB
    const stats = { peak: 0, writes: 0 };
    const nat = await viaNative(bomb, 1024, stats);
    expect(nat).toEqual(viaJs(bomb));
    expect(nat).toMatchObject({ status: 422 });
    expect(stats.peak).toBeGreaterThan(100_000); // it did inflate at a bomb's ratio...
    expect(stats.peak).toBeLessThanOrEqual(1024 * 1032 + 1024); // ...but one piece at a time
    expect(stats.writes).toBeLessThan(20); // and stopped soon after the rows and the slack
  });

  it('the accounted figure covers the read buffer and the inflater\'s', () => {
    expect(nativeMemory(4096)).toBeGreaterThanOrEqual(3 * 4096 * 1032);
    expect(nativeMemory(4096)).toBeLessThan(14 * 2 ** 20);
  });
});
