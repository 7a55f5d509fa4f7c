/**
 * bench/v8-flags: V8 flags reach wrangler dev's runtime through workerd.sh (the config patched
 * on its way in), and GcTrace reads V8's --trace-gc-verbose output. Both run a real workerd,
 * wrangler's own, through wrangler's own miniflare, as `wrangler dev` does.
 */
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Miniflare } from '../../node_modules/wrangler/node_modules/miniflare/dist/src/index.js';
import { ROOT } from '../../models/src/paths';
import { GC_TRACE_FLAGS, GcTrace, heldAfter, isFull } from '../../bench/v8-flags/gc-trace';

const SHIM = join(ROOT, 'bench/v8-flags/workerd.sh');
const saved = { path: process.env.MINIFLARE_WORKERD_PATH, flags: process.env.WORKERD_V8_FLAGS };
let mf: Miniflare | undefined;

afterEach(async () => {
  await mf?.dispose();
  mf = undefined;
  for (const [name, value] of [['MINIFLARE_WORKERD_PATH', saved.path], ['WORKERD_V8_FLAGS', saved.flags]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

/** A Worker on the shim with `flags`; `stdout` gets the runtime's output. */
async function answer(flags: string, script: string, stdout?: (text: string) => void): Promise<string> {
  process.env.MINIFLARE_WORKERD_PATH = SHIM;
  process.env.WORKERD_V8_FLAGS = flags;
  mf = new Miniflare({
    modules: true,
    script,
    ...(stdout ? { handleRuntimeStdio: (out: Readable) => void out.on('data', (d: Buffer) => stdout(d.toString())) } : {}),
  });
  return (await mf.dispatchFetch('http://localhost/')).text();
}

describe('bench/v8-flags', () => {
  it('passes the flags to V8, and only those', async () => {
    const script = 'export default { fetch() { return new Response(typeof gc) } }';
    expect(await answer('--expose-gc', script)).toBe('function');
    await mf!.dispose();
    mf = undefined;
    expect(await answer('', script)).toBe('undefined');
  }, 60_000);

  it('reads the JS heap and the ArrayBuffers V8 holds at each collection: live after a full one, with GC_TRACE_FLAGS', async () => {
    const trace = new GcTrace();
    // 24 MiB of ArrayBuffers kept across a collection (/keep), let go (/drop), collected (/gc).
    const script = `
      let kept = null;
      export default { fetch(request) {
        const path = new URL(request.url).pathname;
        if (path === '/keep') kept = Array.from({ length: 24 }, () => new ArrayBuffer(1 << 20));
        if (path === '/drop') kept = null;
        gc();
        return new Response(path);
      } }`;
    expect(await answer(['--expose-gc', ...GC_TRACE_FLAGS].join(' '), script, (t) => trace.feed(t))).toBe('/');
    const full = () => trace.events.filter(isFull);
    const after = async (path: string, collections: number) => {
      expect(await (await mf!.dispatchFetch(`http://localhost${path}`)).text()).toBe(path);
      // The runtime's output may trail its answer.
      for (let i = 0; i < 50 && full().length < collections; i++) await new Promise((r) => setTimeout(r, 100));
      expect(full().length).toBe(collections);
      return full().at(-1)!;
    };
    const MiB = 1024 * 1024;
    const kept = await after('/keep', 2);
    expect(kept.buffers).toBeGreaterThanOrEqual(24 * MiB);
    expect(kept.buffers).toBeLessThan(32 * MiB);
    // The collection that finds them dead frees them before it reports.
    expect((await after('/drop', 3)).buffers).toBeLessThan(8 * MiB);
    expect((await after('/gc', 4)).buffers).toBeLessThan(8 * MiB);
    for (const e of trace.events) {
      expect(e.heapAfter).toBeGreaterThan(0);
      expect(heldAfter(e)).toBe(e.heapAfter + e.buffers);
    }
  }, 60_000);
});

describe('GcTrace', () => {
  it('reads lines split across chunks and interleaved between isolates', () => {
    const trace = new GcTrace();
    const text = [
      '[7:0xa]      35 ms: Scavenge 2.3 (2.6) -> 2.1 (2.9) MB, pooled: 0.0 MB, 0.31 / 0.00 ms allocation failure; ',
      '[7:0xb]      40 ms: Mark-Compact 9.5 (12.0) -> 6.0 (11.0) MB, pooled: 0 MB, 5.0 / 0.0 ms (average mu = 1.0) external memory pressure',
      '[7:0xa] All spaces,                 used:   2150 KB, available:  1529324 KB, committed:  10560 KB',
      '[7:0xb] All spaces,                 used:   6144 KB, available:  1529324 KB, committed:  10560 KB',
      '[7:0xa] Backing store memory:                          299 KB',
      '[7:0xb] Backing store memory:                        13411 KB',
      '[wrangler:info] GET /ping 200 OK (27ms)',
      '',
    ].join('\n');
    for (let i = 0; i < text.length; i += 37) trace.feed(text.slice(i, i + 37));
    expect(trace.events).toEqual([
      { isolate: '0xa', kind: 'Scavenge', heapBefore: 2.3 * 1024 * 1024, heapAfter: 2150 * 1024, buffers: 299 * 1024 },
      { isolate: '0xb', kind: 'Mark-Compact', heapBefore: 9.5 * 1024 * 1024, heapAfter: 6144 * 1024, buffers: 13411 * 1024 },
    ]);
    expect(trace.since(1).map((e) => e.isolate)).toEqual(['0xb']);
  });
});
