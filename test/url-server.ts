/**
 * A real HTTP server on 127.0.0.1 for the URL input tests (test/worker/url.test.ts): started by
 * the worker project's global setup, so that workerd's `fetch()` goes over the network to it
 * exactly as it would to an image host. It serves images, non-images, errors, redirect
 * chains, slow and huge bodies (announced, chunked, or gzip that inflates past its
 * Content-Length), and counts the requests it gets so a test can prove a refused URL was
 * never fetched.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { gzipSync } from 'node:zlib';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Base URL of the URL input test server, e.g. `http://127.0.0.1:41234`. */
    urlServer: string;
  }
}

const PHOTOS = resolve(import.meta.dirname, 'fixtures/photos');

export interface UrlServer {
  base: string;
  close(): Promise<void>;
}

export async function startUrlServer(): Promise<UrlServer> {
  const hits = new Map<string, number>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  let base = '';

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/hits') hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    handle(url, req, res).catch((err: unknown) => {
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  });

  async function handle(url: URL, _req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parts = url.pathname.split('/').filter(Boolean);
    const n = (name: string, fallback: number) => Number(url.searchParams.get(name) ?? fallback);
    switch (parts[0]) {
      case 'hits':
        return void res.end(JSON.stringify({ count: hits.get(url.searchParams.get('path') ?? '') ?? 0 }));
      case 'image': {
        // Served as octet-stream: the Worker must sniff, not trust the Content-Type.
        const bytes = await readFile(resolve(PHOTOS, parts[1] ?? ''));
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.byteLength });
        return void res.end(bytes);
      }
      case 'truncated': {
        const bytes = await readFile(resolve(PHOTOS, 'chelsea.jpg'));
        res.writeHead(200, { 'Content-Type': 'image/jpeg' });
        return void res.end(bytes.subarray(0, bytes.byteLength >> 2));
      }
      case 'text':
        res.writeHead(200, { 'Content-Type': 'image/jpeg' });
        return void res.end('<html>not an image, whatever the Content-Type says</html>');
      case 'empty':
        res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': 0 });
        return void res.end();
      case 'status':
        res.writeHead(Number(parts[1]), { 'Content-Type': 'text/plain' });
        return void res.end(`status ${parts[1]}`);
      case 'redirect': {
        // /redirect/k answers with k more redirects before the image: relative, then absolute.
        const k = Number(parts[1]);
        const to = k > 1 ? `/redirect/${k - 1}` : `${base}/image/chelsea.jpg`;
        res.writeHead(k % 2 ? 302 : 307, { Location: to });
        return void res.end();
      }
      case 'redirect-to':
        res.writeHead(Number(url.searchParams.get('status') ?? 301), { Location: url.searchParams.get('to') ?? '' });
        return void res.end();
      case 'redirect-nowhere':
        res.writeHead(302);
        return void res.end();
      case 'slow-headers':
        return later(n('ms', 10_000), () => res.end('late'));
      case 'slow-body': {
        // The start of a real image at once, the rest too late.
        const bytes = await readFile(resolve(PHOTOS, 'chelsea.jpg'));
        res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': bytes.byteLength });
        res.write(bytes.subarray(0, 1024));
        return later(n('ms', 10_000), () => res.end(bytes.subarray(1024)));
      }
      case 'huge':
        return huge(parts[1] ?? '', n('bytes', 1 << 20), res);
      default:
        res.writeHead(404);
        return void res.end('no such path');
    }
  }

  /** A body of `bytes` bytes, starting like a JPEG so that only its size can refuse it. */
  function huge(mode: string, bytes: number, res: ServerResponse): void {
    const body = Buffer.alloc(bytes);
    body.set([0xff, 0xd8, 0xff, 0xe0]);
    switch (mode) {
      case 'announced':
        // Says how much is coming, sends a little, then stalls: only an early refusal answers fast.
        res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': bytes });
        res.write(body.subarray(0, 1024));
        return later(10_000, () => res.end(body.subarray(1024)));
      case 'chunked': {
        // No Content-Length at all: counted as it arrives.
        res.writeHead(200, { 'Content-Type': 'image/jpeg' });
        let sent = 0;
        const pump = () => {
          while (sent < bytes) {
            const chunk = body.subarray(sent, sent + 65536);
            sent += chunk.byteLength;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      case 'gzip': {
        // A Content-Length that lies about what arrives: the compressed size, far under the
        // limit, of a body the runtime inflates past it.
        const packed = gzipSync(body);
        res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Encoding': 'gzip', 'Content-Length': packed.byteLength });
        return void res.end(packed);
      }
      default:
        res.writeHead(404);
        return void res.end('no such mode');
    }
  }

  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}
