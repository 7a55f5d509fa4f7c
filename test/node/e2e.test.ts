/**
 * End to end: `wrangler dev` as a real server, local R2 seeded the way `npm start` seeds it,
 * and a real JPEG posted over HTTP in the seed page's curl form.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WranglerDev } from '../../bench/workerd';
import { ROOT, uploadModel } from '../../models/src/upload';
import { ensureTestModel } from '../models';

let server: WranglerDev | undefined;
let persistTo: string;
let base: string;

beforeAll(async () => {
  const model = await ensureTestModel('resnet18v1', 'int8');
  persistTo = await mkdtemp(join(tmpdir(), 'edge-resnet-e2e-'));
  await uploadModel(model.dir, { target: 'local', persistTo });
  server = await WranglerDev.start(join(ROOT, 'wrangler.toml'), persistTo);
  base = server.base;
}, 300_000);

afterAll(async () => {
  await server?.stop();
  if (persistTo) await rm(persistTo, { recursive: true, force: true });
});

describe('wrangler dev, end to end', () => {
  it('classifies a JPEG posted as the seed page does (curl -F "data=@kitten.jpg")', async () => {
    const jpeg = await readFile(join(ROOT, 'test/fixtures/photos/chelsea.jpg'));
    const form = new FormData();
    form.append('data', new Blob([jpeg], { type: 'image/jpeg' }), 'chelsea.jpg');
    const res = await fetch(`${base}/resnet18v1/predict`, { method: 'POST', body: form });
    expect(res.status, server?.tail()).toBe(200);
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
