/** The preprocessing kernel as the Worker loads it: a precompiled module bundled by the pool, SIMD on. */
import { describe, expect, it } from 'vitest';
import { IMAGENET_PREPROCESS } from '../../src/models/manifest';
import { preprocess } from '../../src/preprocess';
import { preprocessReference, resizeCropU8 } from '../../src/preprocess/reference';
import { fixture } from './helpers';

describe('preprocess kernel in workerd', () => {
  it('matches the TypeScript reference and Pillow on a real photo', async () => {
    const [src, golden] = await Promise.all([
      fixture('test/fixtures/golden/chelsea.src.rgb'),
      fixture('test/fixtures/golden/chelsea.u8'),
    ]);
    const image = { width: 451, height: 300, data: src };
    const size = 3 * 224 * 224;
    const kernel = new Float32Array(2 * size);
    preprocess(image, IMAGENET_PREPROCESS, kernel, size); // second slot of a batch of two
    const reference = new Float32Array(size);
    preprocessReference(image, IMAGENET_PREPROCESS, reference);
    expect(kernel.subarray(0, size).every((v) => v === 0)).toBe(true);
    expect(kernel.subarray(size)).toEqual(reference);
    expect(resizeCropU8(image, IMAGENET_PREPROCESS)).toEqual(golden);
  });
});
