/**
 * `npm run bench [-- --quick] [--models a,b] [--iterations N]`: measures, writes
 * bench/report.md and bench/report.json, prints the summary. See bench/harness.ts.
 */
import '../models/src/node-wasm';
import { join } from 'node:path';
import { runBenchmark } from './harness';
import { parseCommandLine } from './options';
import { WranglerDev } from './workerd';
import { ROOT } from '../models/src/paths';

const argv = process.argv.slice(2);
// npm runs us with its own argv; the command a reader can repeat is the npm one.
const command = process.env['npm_lifecycle_event'] === 'bench' ? `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}` : `tsx bench/run.ts ${argv.join(' ')}`.trim();

let options;
try {
  options = parseCommandLine(argv, {
    outDir: join(ROOT, 'bench'),
    workDir: join(ROOT, 'bench/tmp'),
    persistTo: join(ROOT, 'bench/tmp/wrangler-state'),
    command,
  });
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(2);
}

// wrangler dev runs in its own process group (so that its workerd child can be killed with
// it), which also means Ctrl-C does not reach it: stop it here.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping wrangler dev`);
    void Promise.all([...WranglerDev.live].map((d) => d.stop())).finally(() => process.exit(130));
  });
}

const t0 = performance.now();
options.onProgress = (line) => console.error(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}`);
const result = await runBenchmark(options);
console.log(result.summary);
console.log(`\nwrote ${result.markdownPath} and ${result.jsonPath}`);
