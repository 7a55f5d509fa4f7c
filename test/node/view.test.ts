/** `npm run models -- view`: the crop the Worker feeds the model, against Pillow's. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/image';
import { IMAGENET_PREPROCESS } from '../../src/models/manifest';
import { viewCrop } from '../../models/src/commands/view';

const ROOT = new URL('../../', import.meta.url);
const path = (p: string) => new URL(p, ROOT).pathname;

describe('models view', () => {
  it.each(['chelsea', 'coffee', 'rocket'])('%s.jpg: the crop is Pillow\'s, byte for byte', async (name) => {
    const crop = await viewCrop(new Uint8Array(readFileSync(path(`test/fixtures/photos/${name}.jpg`))), IMAGENET_PREPROCESS);
    // Pillow's decode + resize + center crop (scripts/make-preprocess-golden.py).
    expect(Buffer.from(crop.u8).equals(readFileSync(path(`test/fixtures/golden/${name}.u8`)))).toBe(true);
    expect(crop.path).toBe('jpeg');
  });

  it('writes the crop as a PNG and raw RGB from the command line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'view-'));
    const out = execFileSync('npx', ['tsx', 'models/src/cli.ts', 'view', 'test/fixtures/photos/chelsea.jpg', '--out', join(dir, 'c.png'), '--raw', join(dir, 'c.rgb')], {
      cwd: path('.'),
      encoding: 'utf8',
    });
    expect(out).toMatch(/chelsea\.jpg: jpeg, decoded 451x300, [\d.]+ MiB decode memory -> 224x224 crop/);
    const png = decodeImage(new Uint8Array(readFileSync(join(dir, 'c.png'))), { maxPixels: 1e6 });
    expect([png.width, png.height]).toEqual([224, 224]);
    expect(Buffer.from(png.data).equals(readFileSync(join(dir, 'c.rgb')))).toBe(true);
    expect(Buffer.from(png.data).equals(readFileSync(path('test/fixtures/golden/chelsea.u8')))).toBe(true);
  });
});
