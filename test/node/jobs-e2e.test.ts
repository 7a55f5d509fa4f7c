/**
 * Jobs end to end under `wrangler dev` (as `npm start` runs it: the three Workers, local R2,
 * the local queue and its consumer): POST /jobs with a URL, and the signed webhook arriving at
 * a local receiver. wrangler dev is started here with --var for the settings a local receiver
 * needs (http callbacks to 127.0.0.1, a webhook secret, URL input from 127.0.0.1).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { uploadModel } from '../../models/src/upload';
import { ensureTestModel } from '../models';
import { startUrlServer, type UrlServer } from '../url-server';
import { startWebhookServer, type ReceivedHook, type WebhookServer } from '../webhook-server';
import { ROOT } from '../../models/src/paths';

const SECRET = 'e2e-webhook-secret';
let child: ChildProcess | undefined;
let persistTo: string;
let base: string;
let hooks: WebhookServer;
let images: UrlServer;
let log = '';

const freePort = () =>
  new Promise<number>((ok, fail) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => ok(port));
    });
    s.on('error', fail);
  });

beforeAll(async () => {
  [hooks, images] = await Promise.all([startWebhookServer(), startUrlServer()]);
  const model = await ensureTestModel('resnet18v1', 'int8');
  persistTo = await mkdtemp(join(tmpdir(), 'edge-resnet-jobs-e2e-'));
  await uploadModel(model.dir, { target: 'local', persistTo });
  const [port, inspector] = [await freePort(), await freePort()];
  const vars = { WEBHOOK_SECRET: SECRET, ALLOW_HTTP_CALLBACKS: 'true', CALLBACK_HOSTS: '127.0.0.1', URL_HOSTS: '127.0.0.1', RETRY_BASE_SECONDS: '1' };
  const configs = ['wrangler.toml', 'wrangler.stage-1.toml', 'wrangler.stage-2.toml'].flatMap((c) => ['--config', join(ROOT, c)]);
  child = spawn(
    join(ROOT, 'node_modules/.bin/wrangler'),
    ['dev', ...configs, '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector), '--persist-to', persistTo, '--show-interactive-dev-session=false', ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`])],
    // Own process group: wrangler starts workerd as a child, and afterAll kills the group.
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } },
  );
  child.stdout?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-10_000)));
  child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-10_000)));
  base = `http://127.0.0.1:${port}`;
  const until = Date.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${log}`);
    const ok = await fetch(`${base}/models`).then((r) => (r.body?.cancel(), r.ok), () => false);
    if (ok) break;
    if (Date.now() > until) throw new Error(`wrangler dev did not answer:\n${log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}, 300_000);

afterAll(async () => {
  if (child?.pid !== undefined && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    process.kill(-child.pid, 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid, 'SIGKILL');
  }
  await Promise.all([hooks?.close(), images?.close()]);
  if (persistTo) await rm(persistTo, { recursive: true, force: true });
});

it('POST /jobs { url } under wrangler dev: 202, then a signed webhook with the /moderate result at the local receiver', async () => {
  const policy = { name: 'e2e', rules: [{ concept: 'entity', threshold: 0.5, action: 'block' }] };
  const res = await fetch(`${base}/jobs`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ url: `${images.base}/image/chelsea.jpg`, policy, callback: `${hooks.base}/hook/e2e?fail=1`, metadata: { from: 'e2e' } }),
  });
  expect(res.status, log).toBe(202);
  const { id } = (await res.json()) as { id: string };

  let received: ReceivedHook[] = [];
  const until = Date.now() + 120_000;
  while (!received.some((h) => h.answered === 200)) {
    if (Date.now() > until) throw new Error(`no webhook after 120 s; job: ${await (await fetch(`${base}/jobs/${id}`)).text()}\n${log}`);
    await new Promise((r) => setTimeout(r, 250));
    received = (await (await fetch(`${hooks.base}/received/e2e`)).json()) as ReceivedHook[];
  }
  // The first delivery answered 503 and was retried by the local queue.
  expect(received.map((h) => h.answered)).toEqual([503, 200]);
  for (const hook of received) {
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(hook.headers['x-signature'] ?? '') ?? [];
    expect(v1).toBe(createHmac('sha256', SECRET).update(`${t}.${hook.body}`).digest('hex'));
    expect(hook.headers['idempotency-key']).toBe(id);
  }
  const body = JSON.parse(received[1]!.body) as { id: string; status: string; metadata: unknown; result: { policy: { name: string }; images: Array<{ decision: string }> } };
  expect(body).toMatchObject({ id, status: 'done', metadata: { from: 'e2e' } });
  expect(body.result.images[0]!.decision).toBe('block');

  const job = (await (await fetch(`${base}/jobs/${id}`)).json()) as { status: string; delivery: { status: string; attempts: number } };
  expect(job).toMatchObject({ status: 'done', delivery: { status: 'delivered', attempts: 2 } });
}, 300_000);
