/**
 * scripts/ensure-built.mjs, the custom build of every wrangler config: each config runs it, and
 * its list of outputs covers every git-ignored file the Worker imports, so that a fresh clone's
 * `npx wrangler dev` / `deploy` builds whatever the bundle needs before bundling.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from '../../models/src/paths';
// @ts-expect-error plain JavaScript (it must run with node alone), no type declarations
import { OUTPUTS } from '../../scripts/ensure-built.mjs';

const configs = readdirSync(ROOT).filter((f) => /^wrangler(\..+)?\.toml$/.test(f));

it('every wrangler config runs it as its custom build', () => {
  expect(configs.length).toBeGreaterThanOrEqual(5);
  for (const config of configs) {
    expect(readFileSync(join(ROOT, config), 'utf8'), config).toMatch(/^\[build\]\ncommand = "node scripts\/ensure-built\.mjs"$/m);
  }
});

it('lists every git-ignored file that the Worker imports', () => {
  const imported = new Set<string>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.ts')) {
        for (const m of readFileSync(path, 'utf8').matchAll(/^import \w+ from '(\.[^']+\.(?:wasm|bin|txt))';$/gm)) {
          imported.add(relative(ROOT, join(dirname(path), m[1]!)));
        }
      }
    }
  };
  walk(join(ROOT, 'src'));
  // `git check-ignore` prints the ignored ones among its arguments (and exits 1 when there are none).
  const ignored = (() => {
    try {
      return execFileSync('git', ['check-ignore', ...imported], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
    } catch (err) {
      if ((err as { status?: number }).status === 1) return [];
      throw err;
    }
  })();
  expect(ignored.length).toBeGreaterThan(0);
  expect([...ignored].sort()).toEqual([...(OUTPUTS as string[])].sort());
});
