/** `npm run models -- policy check|put`: policies checked as the Worker checks them, stored as canonical JSON in (local) R2. */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../models/src/paths';

const run = promisify(execFile);
const exec = (command: string, args: string[]) =>
  run(command, args, { cwd: ROOT, maxBuffer: 1 << 24 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
const cli = (...args: string[]) => exec(process.execPath, ['--import', 'tsx', join(ROOT, 'models/src/cli.ts'), ...args]);

const tmp = await mkdtemp(join(tmpdir(), 'edge-resnet-policy-cli-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

const EXAMPLE = join(ROOT, 'examples/policies/weapons.json');

describe('npm run models -- policy', () => {
  it('checks the example policy, printing what each rule resolved to', async () => {
    const { code, stdout } = await cli('policy', 'check', EXAMPLE);
    expect(code).toBe(0);
    expect(stdout).toMatch(/block at >= 0\.5: n04565375 -> n04565375 \(weapon, arm, weapon system; 7 classes\)/);
    expect(stdout).toMatch(/n03343853 -> n03343853 \(firearm, piece, small-arm; 3 classes\)/);
    expect(stdout).toMatch(/^weapons: valid \(sha256 [0-9a-f]{64}\)$/m);
  });

  it('refuses an invalid policy naming the fields, and an unknown concept naming the rule', async () => {
    const bad = join(tmp, 'bad.json');
    await writeFile(bad, JSON.stringify({ name: 'Bad', rules: [{ concept: 'dog', threshold: 2, action: 'ban' }] }));
    const schema = await cli('policy', 'check', bad);
    expect(schema.code).toBe(1);
    expect(schema.stderr).toMatch(/policy\.name: must be .*policy\.rules\[0\]\.threshold: Too big.*policy\.rules\[0\]\.action/);
    await writeFile(bad, JSON.stringify({ name: 'bad', rules: [{ concept: 'dog', threshold: 0.5, action: 'flag' }, { concept: 'qwertyuiop', threshold: 0.5, action: 'flag' }] }));
    const concept = await cli('policy', 'put', bad, '--local', '--persist-to', join(tmp, 'state'));
    expect(concept.code).toBe(1);
    expect(concept.stderr).toMatch(/policy\.rules\[1\]\.concept: "qwertyuiop"/);
    expect((await cli('policy', 'delete', EXAMPLE)).stderr).toMatch(/usage: policy put/);
  });

  it('puts it into local R2 as policies/<name>.json, in canonical JSON whose sha256 it prints', async () => {
    const state = join(tmp, 'state');
    const put = await cli('policy', 'put', EXAMPLE, '--local', '--persist-to', state);
    expect(put.code, put.stderr).toBe(0);
    const printed = /sha256 ([0-9a-f]{64})/.exec(put.stdout)![1];
    const got = await exec('npx', ['wrangler', 'r2', 'object', 'get', 'edge-resnet-models/policies/weapons.json', '--local', '--persist-to', state, '--pipe']);
    expect(got.code, got.stderr).toBe(0);
    const example = JSON.parse(await readFile(EXAMPLE, 'utf8')) as { rules: Array<Record<string, unknown>> };
    expect(JSON.parse(got.stdout)).toEqual(example);
    // Canonical: no whitespace, keys sorted.
    expect(got.stdout).toMatch(/^\{"name":"weapons","rules":\[\{"action":"block","concept":"n04565375","threshold":0\.5\},/);
    expect(createHash('sha256').update(got.stdout).digest('hex')).toBe(printed);
  });
});
