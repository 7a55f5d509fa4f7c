/**
 * The built client (npm run build:client, client/tsconfig.json): compiled outside the
 * repository, its declarations must type-check in a consumer with browser, Node or Workers
 * types alone (nothing resolving back into src/), and its JS must run from that folder with
 * nothing else (no runtime import of the Worker).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../models/src/paths';

describe('the build (npm run build:client)', () => {
  let dir: string;
  const execFileP = promisify(execFile);
  const tsc = (args: string[]) => execFileP(join(ROOT, 'node_modules/.bin/tsc'), args, { cwd: ROOT }).catch((err: { stdout?: string; stderr?: string }) => {
    throw new Error(`tsc ${args.join(' ')}:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('emits self-contained JS + .d.ts that type-check for browsers, Node and Workers, and run with nothing else', async () => {
    dir = await mkdtemp(join(tmpdir(), 'edge-resnet-client-'));
    // Built outside the repository, as a consumer gets it: no path back into src/ resolves.
    await tsc(['-p', 'client/tsconfig.json', '--outDir', join(dir, 'dist')]);
    const dts = await readFile(join(dir, 'dist/client/types.d.ts'), 'utf8');
    expect(dts).toContain("from '../src/answers/types.js'");
    expect(await readFile(join(dir, 'dist/src/answers/types.d.ts'), 'utf8')).toContain('export interface PredictBody');
    const js = await readFile(join(dir, 'dist/client/index.js'), 'utf8');
    expect(js).not.toMatch(/from '\.\.\/src\//);

    await writeFile(
      join(dir, 'consumer.ts'),
      `import { createClient, EdgeResnetError, type ClassifyResult, type ModerateResult, type Job } from './dist/client/index.js';
const api = createClient({ baseUrl: 'https://api.example', apiKey: 'k' });
export async function use(bytes: Uint8Array): Promise<string> {
  const r: ClassifyResult = await api.classify(bytes, { topk: 3 });
  const m: ModerateResult = await api.moderate({ url: 'https://x.example/a.jpg' }, { policy: { name: 'p', rules: [{ concept: 'dog', threshold: 0.5, action: 'flag' }] } });
  const j: Job = await api.waitForJob('id', { intervalMs: 500 });
  try { await api.models(); } catch (e) { if (e instanceof EdgeResnetError) return e.type; }
  return r.images[0]!.predictions[0]!.label + m.images[0]!.decision + j.status;
}
`,
    );
    await writeFile(join(dir, 'package.json'), '{"type":"module"}');
    // Browsers: DOM only. Node: @types/node only. Workers: workers-types only. Library checks on:
    // the emitted .d.ts must hold up in each.
    const variants = {
      browser: { lib: ['ES2022', 'DOM'], types: [] },
      node: { lib: ['ES2022'], typeRoots: [join(ROOT, 'node_modules/@types')], types: ['node'] },
      workers: { lib: ['ES2022'], typeRoots: [join(ROOT, 'node_modules/@cloudflare')], types: ['workers-types/2023-07-01'] },
    };
    for (const [name, options] of Object.entries(variants)) {
      const compilerOptions = { noEmit: true, strict: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', ...options };
      await writeFile(join(dir, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions, files: ['consumer.ts'] }));
      await tsc(['-p', join(dir, `tsconfig.${name}.json`)]);
    }

    const built = (await import(join(dir, 'dist/client/index.js'))) as typeof import('../../client/index.js');
    const seen: string[] = [];
    const fetch = async (request: Request) => {
      seen.push(`${request.method} ${new URL(request.url).pathname}`);
      return Response.json({ code: 401, type: 'unauthorized', message: 'missing or invalid API key' }, { status: 401 });
    };
    const err = await built.createClient({ baseUrl: 'https://api.example', fetch }).classify(new Uint8Array([1])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(built.EdgeResnetError);
    expect(err).toMatchObject({ status: 401, type: 'unauthorized' });
    expect(seen).toEqual(['POST /predict']);
  });
});
