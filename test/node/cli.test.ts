/** The models CLI as users run it: dispatch, usage, errors, and `list` over a models folder. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { synthesizeModel } from '../../models/src/synth';
import { modelDir, ROOT } from '../../models/src/paths';

const run = promisify(execFile);
const cli = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', join(ROOT, 'models/src/cli.ts'), ...args], { cwd: ROOT }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

const out = await mkdtemp(join(tmpdir(), 'edge-resnet-cli-'));
afterAll(() => rm(out, { recursive: true, force: true }));

describe('npm run models', () => {
  it('lists every command in --help', async () => {
    const { code, stderr } = await cli('--help');
    expect(code).toBe(0);
    for (const command of ['fetch', 'synth', 'quantize', 'verify', 'upload', 'eval', 'list']) expect(stderr).toMatch(new RegExp(`^  ${command} `, 'm'));
  });

  it('exits non-zero with usage for an unknown command, a bad id or a bad option', async () => {
    expect((await cli('frobnicate')).code).toBe(2);
    const badId = await cli('synth', 'resnet9000');
    expect(badId.code).toBe(1);
    expect(badId.stderr).toMatch(/unknown model "resnet9000"/);
    const badOption = await cli('verify', 'resnet18v1', '--bogus');
    expect(badOption.code).toBe(1);
    expect(badOption.stderr).toMatch(/usage: verify/);
  });

  it('lists the zoo catalog with what is built, and verifies it', async () => {
    await synthesizeModel('resnet18v2', { dir: modelDir(out, 'resnet18v2', 'fp32'), width: 0.0625 });
    const { code, stdout } = await cli('list', '--out', out);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^resnet18v2\s+resnet18-v2-7\.onnx\s+46\.8\s+69\.7\s+fp32 synthetic \d+\.\d MB$/m);
    expect(stdout).toMatch(/^resnet50v1\s+resnet50-v1-7\.onnx\s+102\.6\s+74\.93\s+-$/m);
    const verified = await cli('verify', 'resnet18v2', '--out', out);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/resnet18v2 fp32: ok/);
  });
});
