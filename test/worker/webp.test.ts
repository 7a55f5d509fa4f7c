/**
 * The WebP decoder as the Worker loads it: our libwebp build's .wasm (wasm/webp/webp_dec.wasm)
 * imported by src/image/webp/module.ts as a precompiled module (bundled by the pool as wrangler
 * bundles it) and instantiated inside workerd, which cannot compile WebAssembly from bytes.
 * Pixels are checked against Pillow's answers recorded in test/fixtures/webp/manifest.json.
 */
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors';
import { planDecode } from '../../src/image';
import { decodeWebp, decodeWebpTo, readWebpHeader, webpDecoderMemoryBytes } from '../../src/image/webp';
import { fixture } from './helpers';

const LIMITS = { maxPixels: 16_000_000, maxMemoryMB: 32 };

async function sha256(data: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

const manifest = async () =>
  JSON.parse(new TextDecoder().decode(await fixture('test/fixtures/webp/manifest.json'))) as { files: Record<string, { width: number; height: number; sha256: string }> };

describe('WebP in workerd', () => {
  it('decodes lossy, lossless, lossy+alpha and animated WebPs through the imported wasm module, as Pillow does', async () => {
    const { files } = await manifest();
    for (const name of ['chelsea-lossy-q80.webp', 'chelsea-lossless.webp', 'coffee-lossy-alpha.webp', 'anim-lossy-alpha-offset.webp']) {
      const bytes = await fixture(`test/fixtures/webp/${name}`);
      const image = decodeWebp(bytes, readWebpHeader(bytes), LIMITS);
      const expected = files[name]!;
      expect([image.width, image.height], name).toEqual([expected.width, expected.height]);
      expect(await sha256(image.data), name).toBe(expected.sha256);
    }
  });

  it('streams a 12 MP lossy WebP within the 32 MB budget: full size identical to Pillow, and 1/5 for the model', async () => {
    const bytes = await fixture('test/fixtures/webp/big-4032x3024-lossy.webp');
    const header = readWebpHeader(bytes);
    // Full size, rows copied out by the test (the decoder holds only its ring).
    const image = new Uint8Array(4032 * 3024 * 3);
    let rows = 0;
    decodeWebpTo(bytes, header, 1, { write: (view, y0, count) => (image.set(view.subarray(0, count * 4032 * 3), y0 * 4032 * 3), (rows += count)) }, LIMITS);
    expect(rows).toBe(3024);
    expect(await sha256(image)).toBe((await manifest()).files['big-4032x3024-lossy.webp']!.sha256);
    expect(webpDecoderMemoryBytes()).toBeLessThan(4 * 2 ** 20);
    const plan = planDecode(bytes, LIMITS, { target: 256 });
    expect(plan).toMatchObject({ scale: 5, width: 807, height: 605, streams: true, path: 'webp-lossy@1/5' });
    expect(plan.memoryBytes).toBeLessThan(4 * 2 ** 20);
  });

  it('refuses a lossy file whose alpha is corrupt with a 422, as Pillow does', async () => {
    const bytes = (await fixture('test/fixtures/webp/coffee-lossy-alpha.webp')).slice();
    bytes[38] = (bytes[38]! & ~3) | 3; // the ALPH header's compression method: 3 is undefined
    let err: unknown;
    try {
      decodeWebp(bytes, readWebpHeader(bytes), LIMITS);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(422);
    expect((err as ApiError).message).toBe('corrupt WebP: bad bitstream');
  });
});
