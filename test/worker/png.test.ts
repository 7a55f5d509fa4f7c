/**
 * PNG as the Worker decodes it: rows from our wasm module (wasm/png/png_rows.wasm: zlib 1.2.13
 * and the unfiltering) imported by src/image/png/module.ts as a precompiled module, bundled by
 * the pool as wrangler bundles it and instantiated inside workerd. Without this test a broken
 * import would pass unseen: the decoder would fall back to its JS rows, slower but right.
 * Every fixture gives Pillow's pixels or its refusal (test/fixtures/png/golden.json).
 */
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors';
import { decodePng, readPngHeader } from '../../src/image/png';
import { pngRowsModule } from '../../src/image/png/wasm-rows';
import { fixture } from './helpers';

const LIMITS = { maxPixels: 16_000_000, maxMemoryMB: 32 };

async function sha256(data: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

interface Golden {
  /** Files Pillow decodes that we refuse on purpose (with why). */
  deliberate: Record<string, string>;
  files: Record<string, { width: number; height: number; sha256: string } | { error: string }>;
}

describe('PNG in workerd', () => {
  it('reads rows with the imported wasm module (zlib), not the JS stand-in', () => {
    expect(pngRowsModule()).not.toBeNull();
  });

  it("gives every fixture Pillow's pixels, or refuses it as Pillow does", async () => {
    const { files, deliberate } = JSON.parse(new TextDecoder().decode(await fixture('test/fixtures/png/golden.json'))) as Golden;
    expect(Object.keys(files).length).toBeGreaterThan(200);
    for (const [name, want] of Object.entries(files)) {
      const bytes = await fixture(`test/fixtures/png/${name}`);
      if ('error' in want || name in deliberate) {
        const err = (() => {
          try {
            decodePng(bytes, readPngHeader(bytes), LIMITS);
          } catch (e) {
            return e;
          }
          return null;
        })();
        expect(err, name).toBeInstanceOf(ApiError);
        expect((err as ApiError).status, name).toBe(422);
        continue;
      }
      const image = decodePng(bytes, readPngHeader(bytes), LIMITS);
      if (!('sha256' in want)) throw new Error(name); // (narrowing: refusals were handled above)
      expect([image.width, image.height], name).toEqual([want.width, want.height]);
      expect(await sha256(image.data), name).toBe(want.sha256);
    }
  });

  it("words bad compressed data in zlib's own terms", async () => {
    const bytes = await fixture('test/fixtures/png/bad-zlib-header.png');
    expect(() => decodePng(bytes, readPngHeader(bytes), LIMITS)).toThrow(/bad compressed image data \(incorrect header check\)/);
  });
});
