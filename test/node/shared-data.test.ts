import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NEEDS_SHARED_DATA, SHARED_DATA, hasSharedData } from '../shared-data';

describe('the shared corpus beside the repository', () => {
  it('is listed for every test file that reads it, so that a machine without it skips them all', () => {
    const root = new URL('../../', import.meta.url);
    const readers = ['test/node', 'test/worker', 'test/load']
      .flatMap((dir) => readdirSync(new URL(dir, root)).map((f) => `${dir}/${f}`))
      .filter((f) => f.endsWith('.test.ts') && /from '\.\.\/shared-data'/.test(readFileSync(new URL(f, root), 'utf8')))
      .filter((f) => f !== 'test/node/shared-data.test.ts');
    expect(readers.sort()).toEqual([...NEEDS_SHARED_DATA].sort());
  });

  it.runIf(process.env.CI === 'true')(`is present under CI (${SHARED_DATA})`, () => {
    expect(hasSharedData()).toBe(true);
  });
});
