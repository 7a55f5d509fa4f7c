import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The team's shared corpus: Pillow's own test images and the licensed photos, kept beside the
 * repository (`../shared/data`) rather than in it. `EDGE_RESNET_SHARED_DATA` points elsewhere.
 * The tests that read it (vitest.config.ts, `NEEDS_SHARED_DATA`) are left out, with a warning,
 * when it is absent on a developer's machine, and fail under CI=true.
 */
export const SHARED_DATA = resolve(
  process.env.EDGE_RESNET_SHARED_DATA ?? join(fileURLToPath(new URL('..', import.meta.url)), '..', 'shared', 'data'),
);

export const hasSharedData = (): boolean => existsSync(join(SHARED_DATA, 'pillow-tests')) && existsSync(join(SHARED_DATA, 'photos'));

/** A folder of the corpus as a path (`sharedPath('photos')`) or as a URL ending in '/'. */
export const sharedPath = (folder: string): string => join(SHARED_DATA, folder);
export const sharedUrl = (folder: string): URL => pathToFileURL(`${join(SHARED_DATA, folder)}/`);

/** The test files that read it; test/node/shared-data.test.ts checks the list is whole. */
export const NEEDS_SHARED_DATA = [
  'test/node/gif.test.ts',
  'test/node/jpeg-exact.test.ts',
  'test/node/webp.test.ts',
  'test/node/webp-scaled.test.ts',
];
