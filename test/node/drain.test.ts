/**
 * src/middleware/drain: an answer given before the upload was read waits for the rest of the
 * upload (bounded), so that HTTP/1.1 clients still sending get the answer instead of a reset.
 */
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { drainBody, drainUnreadBody } from '../../src/middleware/drain';

/** A body of `chunks` chunks of `size` bytes that counts what was pulled from it. */
function countingBody(chunks: number, size: number, delayMs = 0): { body: ReadableStream<Uint8Array>; pulled: () => number } {
  let sent = 0;
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent === chunks) return controller.close();
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      sent++;
      pulled += size;
      controller.enqueue(new Uint8Array(size));
    },
  });
  return { body, pulled: () => pulled };
}

function app(maxBytes = 1 << 20, timeoutMs = 1000) {
  const a = new Hono();
  a.use('*', drainUnreadBody({ maxBytes: () => maxBytes, timeoutMs: () => timeoutMs }));
  a.post('/early', (c) => c.json({ error: 'busy' }, 503)); // answers without reading the body
  a.post('/read', async (c) => c.json({ bytes: (await c.req.arrayBuffer()).byteLength }));
  return a;
}

const post = (path: string, body: ReadableStream<Uint8Array>, length?: number) =>
  new Request(`http://x${path}`, { method: 'POST', body, headers: length === undefined ? {} : { 'content-length': String(length) }, duplex: 'half' } as RequestInit);

describe('drainUnreadBody', () => {
  it('reads the rest of an upload the answer did not need, before answering', async () => {
    const { body, pulled } = countingBody(16, 64 * 1024);
    const res = await app().fetch(post('/early', body, 16 * 64 * 1024));
    expect(res.status).toBe(503);
    expect(pulled()).toBe(16 * 64 * 1024);
  });

  it('leaves a body the handler read alone', async () => {
    const { body, pulled } = countingBody(4, 1000);
    const res = await app().fetch(post('/read', body, 4000));
    expect(await res.json()).toEqual({ bytes: 4000 });
    expect(pulled()).toBe(4000);
  });

  it('does not drain a body announced over the limit (refused as it is)', async () => {
    const { body, pulled } = countingBody(16, 64 * 1024);
    const res = await app(100_000).fetch(post('/early', body, 16 * 64 * 1024));
    expect(res.status).toBe(503);
    expect(pulled()).toBeLessThanOrEqual(64 * 1024); // at most what the stream read ahead
  });

  it('stops at the limit when the length was not announced', async () => {
    const { body, pulled } = countingBody(100, 64 * 1024);
    await app(256 * 1024).fetch(post('/early', body));
    expect(pulled()).toBeGreaterThan(256 * 1024);
    expect(pulled()).toBeLessThan(100 * 64 * 1024);
  });
});

describe('drainBody', () => {
  it('gives up at its deadline on a body that keeps coming slowly', async () => {
    const { body } = countingBody(1000, 10, 20);
    const t0 = Date.now();
    expect(await drainBody(body, 1 << 20, Date.now() + 150)).toBe('timed-out');
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('says how it ended', async () => {
    expect(await drainBody(countingBody(3, 10).body, 100, Date.now() + 1000)).toBe('drained');
    expect(await drainBody(countingBody(30, 10).body, 100, Date.now() + 1000)).toBe('too-long');
    const broken = new ReadableStream<Uint8Array>({ pull: (c) => c.error(new Error('client went away')) });
    expect(await drainBody(broken, 100, Date.now() + 1000)).toBe('failed');
  });

  it('reads a byte stream into one buffer, allocating nothing per chunk', async () => {
    // A byte source that fills the reader's own buffer (byobRequest) when it has one.
    const views: number[] = [];
    let sent = 0;
    const total = 1_000_000;
    const body = new ReadableStream({
      type: 'bytes',
      pull(controller) {
        if (sent >= total) {
          controller.close();
          return controller.byobRequest?.respond(0); // a pending read ends with the stream
        }
        const request = controller.byobRequest;
        if (!request?.view) {
          const chunk = new Uint8Array(Math.min(4096, total - sent));
          sent += chunk.byteLength;
          return controller.enqueue(chunk);
        }
        const n = Math.min(request.view.byteLength, 10_000, total - sent);
        views.push(request.view.buffer.byteLength);
        sent += n;
        request.respond(n);
      },
    }) as ReadableStream<Uint8Array>;
    expect(await drainBody(body, total, Date.now() + 5000)).toBe('drained');
    expect(sent).toBe(total);
    // Every read went into the reader's buffer: the same 64 KiB, handed back and forth.
    expect(views.length).toBe(100);
    expect(new Set(views)).toEqual(new Set([64 * 1024]));
  });
});
