/**
 * The WebP decoder as the Worker loads it: libwebp's .wasm imported by src/image/webp/index.ts
 * as a precompiled module (bundled by the pool as wrangler bundles it) and instantiated inside
 * workerd, which cannot compile WebAssembly from bytes. Pixels are checked against Pillow's
 * answers recorded in test/fixtures/webp/manifest.json.
 */
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors';
import { decodeWebp, readWebpHeader } from '../../src/image/webp';
import { fixture } from './helpers';

const LIMITS = { maxPixels: 16_000_000, maxMemoryMB: 32 };

async function sha256(data: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

describe('WebP in workerd', () => {
  it('decodes lossless, lossy+alpha and animated WebPs through the imported wasm module, as Pillow does', async () => {
    const manifest = JSON.parse(new TextDecoder().decode(await fixture('test/fixtures/webp/manifest.json'))) as {
      files: Record<string, { width: number; height: number; sha256: string }>;
    };
    for (const name of ['chelsea-lossless.webp', 'coffee-lossy-alpha.webp', 'anim-lossy-alpha-offset.webp']) {
      const bytes = await fixture(`test/fixtures/webp/${name}`);
      const header = readWebpHeader(bytes);
      const image = await decodeWebp(bytes, header, LIMITS);
      const expected = manifest.files[name]!;
      expect([image.width, image.height], name).toEqual([expected.width, expected.height]);
      expect(await sha256(image.data), name).toBe(expected.sha256);
    }
  });

  it('refuses a 12 MP lossy WebP over the 32 MB budget before decoding', async () => {
    const bytes = await fixture('test/fixtures/webp/big-4032x3024-lossy.webp');
    const err = await decodeWebp(bytes, readWebpHeader(bytes), LIMITS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(413);
  });
});
