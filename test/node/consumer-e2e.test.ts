/**
 * The example consumer Worker (examples/moderation-consumer) end to end: `wrangler dev` with
 * the consumer's config first (the Worker served on the port) and the classifier's after it,
 * the consumer calling the `Classifier` entrypoint over its service binding, on local R2
 * seeded with a test model and policies. Also type-checks the consumer against the exported
 * RPC types (`edge-resnet/rpc`), as a consumer in another repository would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../bench/workerd';
import { BUCKET } from '../../models/src/upload';
import { manifestKey, modelKey, type ModelManifest } from '../../src/models/manifest';
import { policyHash, policyKey, type Policy } from '../../src/policies/schema';
import { ensureTestModel } from '../models';
import { ROOT } from '../../models/src/paths';
import { run } from '../../models/src/run';

const CONSUMER = join(ROOT, 'examples/moderation-consumer');
const WRANGLER = join(ROOT, 'node_modules/.bin/wrangler');

// entity (n00001740) is above all 1000 classes: its probability is 1 whatever the synthetic
// weights say, so these decisions are known in advance.
const POLICIES: Policy[] = [
  { name: 'e2e-block', rules: [{ concept: 'entity', threshold: 0.99, action: 'block' }] },
  { name: 'e2e-flag', rules: [{ concept: 'n00001740', threshold: 0.5, action: 'flag' }, { concept: 'weapon', threshold: 1, action: 'block' }] },
  { name: 'e2e-allow', rules: [{ concept: 'weapon', threshold: 1, action: 'block' }] },
];

let persistTo: string;
let dev: ChildProcess | undefined;
let log = '';
let base: string;
let weapons: Policy;

/**
 * The test model and the policies into local R2 in one wrangler process (each costs seconds to
 * start), the manifest last as uploadModel does it.
 */
async function seed(model: { dir: string; manifest: ModelManifest }, policies: Policy[]): Promise<void> {
  const dir = join(persistTo, '.seed');
  await mkdir(dir, { recursive: true });
  const files = [{ key: modelKey(model.manifest.id), file: join(model.dir, 'model.onnx') }];
  for (const p of policies) {
    const file = join(dir, `${p.name}.json`);
    await writeFile(file, JSON.stringify(p));
    files.push({ key: policyKey(p.name), file });
  }
  files.push({ key: manifestKey(model.manifest.id), file: join(model.dir, 'manifest.json') });
  const list = join(dir, 'files.json');
  await writeFile(list, JSON.stringify(files));
  await run(WRANGLER, ['r2', 'bulk', 'put', BUCKET, '--filename', list, '--concurrency', '1', '--local', '--persist-to', persistTo]);
}

async function waitReady(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (dev?.exitCode !== null) throw new Error(`wrangler dev exited:\n${log.slice(-3000)}`);
    try {
      const res = await fetch(`${base}/`);
      const body = (await res.json()) as { service?: string };
      if (res.ok && body.service === 'moderation-consumer') return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`wrangler dev did not answer in ${timeoutMs} ms:\n${log.slice(-3000)}`);
}

beforeAll(async () => {
  persistTo = await mkdtemp(join(tmpdir(), 'edge-resnet-consumer-'));
  const model = await ensureTestModel('resnet18v1', 'int8');
  weapons = JSON.parse(await readFile(join(ROOT, 'examples/policies/weapons.json'), 'utf8')) as Policy;
  await seed(model, [...POLICIES, weapons]);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // The consumer first: wrangler dev serves the first config's Worker on the port and runs
  // the others beside it, reachable through service bindings only.
  dev = spawn(
    WRANGLER,
    ['dev', '--config', join(CONSUMER, 'wrangler.toml'), '--config', join(ROOT, 'wrangler.toml'), '--ip', '127.0.0.1', '--port', String(port), '--persist-to', persistTo, '--show-interactive-dev-session=false'],
    // Own process group: wrangler starts workerd as a child, and afterAll stops the group.
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } },
  );
  const append = (d: Buffer) => (log = (log + d.toString()).slice(-20_000));
  dev.stdout?.on('data', append);
  dev.stderr?.on('data', append);
  await waitReady(90_000);
}, 180_000);

afterAll(async () => {
  const pid = dev?.pid;
  if (dev && pid !== undefined && dev.exitCode === null && dev.signalCode === null) {
    const exited = new Promise<void>((r) => dev!.once('exit', () => r()));
    try {
      process.kill(-pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (dev.exitCode === null && dev.signalCode === null) process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (persistTo) await rm(persistTo, { recursive: true, force: true });
});

const photo = (name: string) => readFile(join(ROOT, 'test/fixtures/photos', name));

interface UploadAnswer {
  accepted: boolean;
  decision?: 'allow' | 'flag' | 'block';
  review?: boolean;
  triggered?: Array<{ concept: string; action: string; probability: number; threshold: number }>;
  policy?: { name: string; sha256: string };
  model?: { id: string; weights: string };
  notice?: string;
  image?: { width: number; height: number };
  error?: { code: number; type: string; message: string };
}

async function upload(query: string, body: BodyInit): Promise<{ status: number; body: UploadAnswer }> {
  const res = await fetch(`${base}/upload${query}`, { method: 'POST', body });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as UploadAnswer };
  } catch {
    throw new Error(`HTTP ${res.status}, not JSON: ${text.slice(0, 300)}\n${log.slice(-2000)}`);
  }
}

describe('example consumer under wrangler dev', () => {
  it('rejects an upload that the policy blocks with 422, saying which rule fired, with the synthetic notice', async () => {
    const { status, body } = await upload('?policy=e2e-block', await photo('chelsea.jpg'));
    expect(status, log.slice(-2000)).toBe(422);
    expect(body).toMatchObject({ accepted: false, decision: 'block', review: false, image: { width: 451, height: 300 } });
    expect(body.policy).toEqual({ name: 'e2e-block', sha256: await policyHash(POLICIES[0]!) });
    expect(body.triggered!.map((t) => [t.concept, t.action, t.threshold])).toEqual([['n00001740', 'block', 0.99]]);
    expect(body.triggered![0]!.probability).toBeCloseTo(1, 5);
    expect(body.model).toEqual({ id: 'resnet18v1', weights: 'synthetic' });
    expect(body.notice).toMatch(/synthetic weights/);
  });

  it('accepts what the policy allows (201) and what it flags (201, marked for review), from multipart too', async () => {
    const allowed = await upload('?policy=e2e-allow', await photo('coffee.jpg'));
    expect(allowed.status).toBe(201);
    expect(allowed.body).toMatchObject({ accepted: true, decision: 'allow', review: false, triggered: [] });
    expect(allowed.body.notice).toMatch(/synthetic weights/);

    const form = new FormData();
    form.append('file', new Blob([await photo('chelsea.jpg')], { type: 'image/jpeg' }), 'chelsea.jpg');
    const flagged = await upload('?policy=e2e-flag', form);
    expect(flagged.status).toBe(201);
    expect(flagged.body).toMatchObject({ accepted: true, decision: 'flag', review: true, policy: { name: 'e2e-flag' } });
    expect(flagged.body.triggered!.map((t) => t.concept)).toEqual(['n00001740']);
  });

  it('applies its configured policy (weapons) when the request names none', async () => {
    const { status, body } = await upload('', await photo('chelsea.jpg'));
    expect(body.policy).toEqual({ name: 'weapons', sha256: await policyHash(weapons) });
    expect(['allow', 'flag', 'block']).toContain(body.decision);
    expect(status).toBe(body.decision === 'block' ? 422 : 201);
    for (const t of body.triggered!) expect(t.probability).toBeGreaterThanOrEqual(t.threshold);
  });

  it("passes the classifier's refusals through with their status, code and type", async () => {
    const text = await upload('?policy=e2e-allow', new TextEncoder().encode('not an image at all'));
    expect(text.status).toBe(415);
    expect(text.body.error).toMatchObject({ code: 415, type: 'unsupported_media_type' });
    const missing = await upload('?policy=no-such-policy', await photo('chelsea.jpg'));
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 404, type: 'not_found', message: 'no policy named "no-such-policy"' });
  });

  it('type-checks against the exported RPC types (edge-resnet/rpc)', async () => {
    await run(join(ROOT, 'node_modules/.bin/tsc'), ['-p', CONSUMER]);
  });
});
