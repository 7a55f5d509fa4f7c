/**
 * End to end: `wrangler dev` as a real server, local R2 seeded the way `npm start` seeds it,
 * and a real JPEG posted over HTTP in the seed page's curl form.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, uploadModel } from '../../models/src/upload';
import { ensureTestModel } from '../models';

let server: ChildProcess | undefined;
let persistTo: string;
let base: string;
let log = '';

beforeAll(async () => {
  const model = await ensureTestModel('resnet18v1', 'int8');
  persistTo = await mkdtemp(join(tmpdir(), 'edge-resnet-e2e-'));
  await uploadModel(model.dir, { target: 'local', persistTo });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(
    'npx',
    ['wrangler', 'dev', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', persistTo, '--show-interactive-dev-session=false'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  server.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  server.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  await waitForHealthy(`${base}/ping`, 180_000);
}, 300_000);

afterAll(async () => {
  // wrangler dev starts workerd as a child: kill the whole process group.
  if (server?.pid) process.kill(-server.pid, 'SIGTERM');
  if (persistTo) await rm(persistTo, { recursive: true, force: true });
});

describe('wrangler dev, end to end', () => {
  it('classifies a JPEG posted as the seed page does (curl -F "data=@kitten.jpg")', async () => {
    const jpeg = await readFile(join(ROOT, 'test/fixtures/photos/chelsea.jpg'));
    const form = new FormData();
    form.append('data', new Blob([jpeg], { type: 'image/jpeg' }), 'chelsea.jpg');
    const res = await fetch(`${base}/resnet18v1/predict`, { method: 'POST', body: form });
    expect(res.status, log.slice(-2000)).toBe(200);
    expect(res.headers.get('X-Model-Weights')).toBe('synthetic');
    const body = (await res.json()) as Array<{ class: string; probability: number }>;
    expect(body).toHaveLength(5);
    expect(body[0]!.class).toMatch(/^n\d{8} \S/);
    const probabilities = body.map((p) => p.probability);
    expect(probabilities).toEqual([...probabilities].sort((a, b) => b - a));
  });

  it('answers JSON errors over HTTP too', async () => {
    const res = await fetch(`${base}/predict`, { method: 'POST', body: 'not an image' });
    expect(res.status).toBe(415);
    expect(await res.json()).toMatchObject({ code: 415, type: 'unsupported_media_type' });
  });
});

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? done(address.port) : fail(new Error('no port'))));
    });
  });
}

async function waitForHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server?.exitCode !== null) throw new Error(`wrangler dev exited:\n${log.slice(-3000)}`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`wrangler dev did not become healthy in ${timeoutMs} ms:\n${log.slice(-3000)}`);
}
