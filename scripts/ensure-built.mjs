/**
 * Runs `npm run build` when one of its outputs is missing (a fresh clone), else does nothing.
 * The Worker imports them (the preprocessing kernel, the warm-up network, the concept senses),
 * so without them wrangler fails with an ENOENT that does not say what to run. Every wrangler
 * config runs this as its custom build (`[build] command`), so `npx wrangler dev` and
 * `npx wrangler deploy` work from a fresh clone; the vitest workers pool does not run custom
 * builds (`npm test` builds first). Plain JavaScript: it runs on every `wrangler dev` start and
 * reload, so it must start fast and need nothing compiled.
 *
 * Only missing outputs trigger a build: sources edited after a build still need
 * `npm run build` (rebuilding on every reload would cost ~8 s each time).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Every build output the Worker imports (test/node/ensure-built.test.ts keeps this list complete). */
export const OUTPUTS = ['wasm/preprocess/build/preprocess.wasm', 'src/onnx/warmup.bin', 'src/concepts/generated/noun-senses.txt'];
// `wrangler dev -c a -c b -c c` runs the three configs' builds at once: one builds, the others wait.
const LOCK = join(ROOT, 'node_modules/.cache/edge-resnet-build.lock');
const STALE_LOCK_MS = 5 * 60_000;

const missing = () => OUTPUTS.filter((f) => !existsSync(join(ROOT, f)));

function takeLock() {
  mkdirSync(dirname(LOCK), { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      return;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      // A build killed half-way leaves its lock behind.
      if (Date.now() - statSync(LOCK, { throwIfNoEntry: false })?.mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true });
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250);
    }
  }
}

// Run as a script (wrangler's custom build), not when imported for OUTPUTS.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && missing().length > 0) {
  takeLock();
  try {
    const still = missing();
    if (still.length > 0) {
      console.error(`edge-resnet: ${still.join(', ')} not built yet; running \`npm run build\` (once, ~10 s)`);
      const result = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
      if (result.status !== 0) {
        console.error('edge-resnet: `npm run build` failed; fix the error above and run it again');
        process.exitCode = 1;
      }
    }
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}
