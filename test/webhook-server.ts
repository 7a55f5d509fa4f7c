/**
 * A webhook receiver on 127.0.0.1 for the jobs tests (test/worker/jobs*.test.ts), started by
 * the worker project's global setup so that the consumer's `fetch()` goes over the network.
 * `POST /hook/<name>` records the delivery (headers and body) under <name> and answers as its
 * query says: `?fail=N` answers 503 to the first N deliveries and 200 after; `?status=S`
 * always answers S; `?redirect=1` answers a 302 to /hook/<name>-redirected; `?slow=ms` waits
 * before answering 200. `GET /received/<name>` lists what <name> got.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Base URL of the webhook receiver, e.g. `http://127.0.0.1:41235`. */
    webhookServer: string;
  }
}

export interface ReceivedHook {
  headers: Record<string, string>;
  body: string;
  /** The status this receiver answered. */
  answered: number;
}

export interface WebhookServer {
  base: string;
  close(): Promise<void>;
}

export async function startWebhookServer(): Promise<WebhookServer> {
  const received = new Map<string, ReceivedHook[]>();
  const timers = new Set<ReturnType<typeof setTimeout>>();

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const [kind, name = ''] = url.pathname.split('/').filter(Boolean);
    if (req.method === 'GET' && kind === 'received') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return void res.end(JSON.stringify(received.get(name) ?? []));
    }
    if (req.method !== 'POST' || kind !== 'hook') {
      res.writeHead(404);
      return void res.end();
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const list = received.get(name) ?? [];
      received.set(name, list);
      const fail = Number(url.searchParams.get('fail') ?? 0);
      const status = url.searchParams.has('status') ? Number(url.searchParams.get('status')) : list.length < fail ? 503 : 200;
      const redirect = url.searchParams.has('redirect');
      const answered = redirect ? 302 : status;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      list.push({ headers, body: Buffer.concat(chunks).toString('utf8'), answered });
      const answer = () => {
        res.writeHead(answered, redirect ? { Location: `/hook/${name}-redirected` } : { 'Content-Type': 'text/plain' });
        res.end(String(answered));
      };
      const slow = Number(url.searchParams.get('slow') ?? 0);
      if (slow > 0) {
        const t = setTimeout(() => (timers.delete(t), answer()), slow);
        timers.add(t);
      } else answer();
    });
  });

  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}
