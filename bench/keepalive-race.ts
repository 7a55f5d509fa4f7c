/**
 * The cause of the connections dropped under bursts (issue #11), reproduced with workerd alone:
 * no wrangler, no miniflare, no inspector, none of our code.
 *
 * workerd's HTTP server (kj's HttpServer) closes a kept-alive connection when no next request
 * has been read from it within 5 s of its last answer (kj's default `pipelineTimeout`). The
 * timer and the socket are served by the same thread as the isolate. If a client sends its next
 * request on such a connection while the isolate is busy (a model load, a run of decodes and
 * inferences), and the thread stays busy past those 5 s, the timer wins when the loop gets
 * back: the connection is closed with the request unread, and the client gets a reset
 * (`read ECONNRESET` from Node's fetch; wrangler dev's proxy, which keeps connections alive to
 * the runtime, answers it as 503 "Your worker restarted mid-request"). A request on a new
 * connection, or one whose connection's last answer was less than 5 s before the thread came
 * back, is served.
 *
 *   npx tsx bench/keepalive-race.ts
 *
 * Each case: client B gets an answer on a connection it keeps alive; client A then makes the
 * Worker busy for `busyMs` (synchronously, as a decode or an inference is); `idleMs` after B's
 * answer, while A's request runs, B sends again, on the same connection or a new one.
 */
import { Agent, fetch as undiciFetch } from 'undici';
import { workerdAlone, type WorkerdAlone } from './workerd-alone';

/** A Worker that answers after `?busy=` ms of synchronous work, having read the body. */
const BUSY_WORKER = `export default {
  async fetch(request) {
    if (request.body) await request.arrayBuffer();
    const ms = Number(new URL(request.url).searchParams.get('busy') ?? 0);
    const start = Date.now();
    while (Date.now() - start < ms) {}
    return new Response('ok');
  },
};`;

export interface RaceCase {
  busyMs: number;
  idleMs: number;
  connection: 'kept-alive' | 'new';
}

export interface RaceOutcome extends RaceCase {
  /** 'answered', or the client's error (e.g. `read ECONNRESET`). */
  second: string;
}

export async function startBusyWorker(): Promise<WorkerdAlone> {
  const w = await workerdAlone(BUSY_WORKER);
  await w.post('/', new Uint8Array(1)); // started
  return w;
}

export async function race(w: WorkerdAlone, c: RaceCase): Promise<RaceOutcome> {
  const b = new Agent({ connections: 1 });
  const a = new Agent();
  try {
    const body = new Uint8Array(100_000);
    const first = await undiciFetch(`${w.base}/`, { method: 'POST', body, dispatcher: b });
    await first.text();
    const busy = undiciFetch(`${w.base}/?busy=${c.busyMs}`, { dispatcher: a }).then((r) => r.text());
    await new Promise((r) => setTimeout(r, c.idleMs));
    let second: string;
    try {
      const dispatcher = c.connection === 'kept-alive' ? b : new Agent({ pipelining: 0 });
      const res = await undiciFetch(`${w.base}/`, { method: 'POST', body, dispatcher });
      second = res.ok && (await res.text()) === 'ok' ? 'answered' : `HTTP ${res.status}`;
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
      second = cause;
    }
    await busy;
    return { ...c, second };
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

export const CASES: RaceCase[] = [
  { busyMs: 4000, idleMs: 1000, connection: 'kept-alive' },
  { busyMs: 5500, idleMs: 1000, connection: 'kept-alive' },
  { busyMs: 5500, idleMs: 100, connection: 'kept-alive' },
  { busyMs: 5500, idleMs: 1000, connection: 'new' },
];

async function main(): Promise<void> {
  const w = await startBusyWorker();
  try {
    console.log(`workerd ${w.version} alone; B's second request, sent while A keeps the isolate busy:\n`);
    console.log('| isolate busy | B idle before sending | B connection | B second request |');
    console.log('|---|---|---|---|');
    for (const c of CASES) {
      const o = await race(w, c);
      console.log(`| ${o.busyMs} ms | ${o.idleMs} ms | ${o.connection} | ${o.second} |`);
    }
  } finally {
    await w.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
