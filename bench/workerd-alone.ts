/**
 * A Worker run by wrangler's own workerd alone (no wrangler dev proxy, no pipeline, V8
 * defaults): the decoder benches (jpeg-decode.ts, png-decode.ts --workerd) time code where it
 * runs deployed. The Worker's source is bundled by esbuild; its `.wasm` imports become workerd
 * wasm modules (compiled by workerd, as wrangler's CompiledWasm rule does).
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { build } from 'esbuild';
import { ROOT } from '../models/src/paths';

export interface WorkerdAlone {
  /** workerd's version (wrangler's dependency). */
  version: string;
  /** http://127.0.0.1:<port> */
  base: string;
  /** POSTs `body` to the Worker at `path` (retrying while workerd starts); a non-2xx answer throws. */
  post(path: string, body: Uint8Array): Promise<string>;
  close(): Promise<void>;
}

/** Bundles `source` (an ES module Worker; absolute imports) and serves it on a free port. */
export async function workerdAlone(source: string, options: { nodePaths?: string[] } = {}): Promise<WorkerdAlone> {
  const tmp = await mkdtemp(join(tmpdir(), 'workerd-alone-'));
  await writeFile(join(tmp, 'worker.ts'), source);
  const wasm = new Map<string, string>(); // module name -> file
  await build({
    entryPoints: [join(tmp, 'worker.ts')],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    outfile: join(tmp, 'worker.mjs'),
    nodePaths: [join(ROOT, 'node_modules'), ...(options.nodePaths ?? [])],
    logLevel: 'warning',
    plugins: [
      {
        name: 'wasm-modules',
        setup(b) {
          b.onResolve({ filter: /\.wasm$/ }, (args) => {
            const file = join(args.resolveDir, args.path);
            const name = `${wasm.size}-${basename(file)}`;
            wasm.set(name, file);
            return { path: name, external: true };
          });
        },
      },
    ],
  });
  const port = 20000 + Math.floor(Math.random() * 20000);
  // capnp embeds files beside the config (absolute paths are not read).
  for (const [name, file] of wasm) await copyFile(file, join(tmp, name));
  const modules = [
    `(name = "worker.mjs", esModule = embed "worker.mjs")`,
    ...[...wasm.keys()].map((name) => `(name = ${JSON.stringify(name)}, wasm = embed ${JSON.stringify(name)})`),
  ];
  await writeFile(
    join(tmp, 'config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .w) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);
const w :Workerd.Worker = (modules = [ ${modules.join(', ')} ], compatibilityDate = "2025-01-01");
`,
  );
  const fromWrangler = createRequire(join(ROOT, 'node_modules/wrangler/package.json'));
  const bin = (fromWrangler('workerd') as { default: string }).default;
  const version = (fromWrangler('workerd/package.json') as { version: string }).version;
  const proc = spawn(bin, ['serve', join(tmp, 'config.capnp')], { stdio: ['ignore', 'ignore', 'inherit'] });
  return {
    version,
    base: `http://127.0.0.1:${port}`,
    async post(path, body) {
      for (let attempt = 0; ; attempt++) {
        try {
          const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body });
          if (!res.ok) throw new Error(`workerd: HTTP ${res.status}: ${await res.text()}`);
          return await res.text();
        } catch (err) {
          if (attempt > 50 || (err instanceof Error && err.message.startsWith('workerd:'))) throw err;
          await new Promise((r) => setTimeout(r, 100)); // still starting
        }
      }
    },
    async close() {
      proc.kill();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}
