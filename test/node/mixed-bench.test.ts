/**
 * bench/mixed.ts without wrangler: the configs it writes for each deployment, how it reads
 * Server-Timing, and the ratios it reports.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deploymentConfigs, rows, serverTimes, setVar, table, type MixedSample } from '../../bench/mixed';
import { parseModelWorkers } from '../../src/config';
import { ROOT } from '../../models/src/paths';

const front = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
const template = readFileSync(join(ROOT, 'wrangler.model-a.toml'), 'utf8');
const models = ['resnet18v1', 'resnet34v1', 'resnet50v1'];

/** `name = "value"` lines of a config's [vars], and its service bindings. */
function read(toml: string) {
  const vars = Object.fromEntries([...toml.split(/^\[vars\]$/m)[1]!.matchAll(/^([A-Z_0-9]+) = "(.*)"$/gm)].map((m) => [m[1], m[2]]));
  const services = [...toml.matchAll(/^\[\[services\]\]\nbinding = "(.*)"\nservice = "(.*)"$/gm)].map((m) => ({ binding: m[1], service: m[2] }));
  return { vars, services, name: /^name = "(.*)"$/m.exec(toml)?.[1], main: /^main = "(.*)"$/m.exec(toml)?.[1] };
}

describe('bench/mixed.ts configs', () => {
  it('one Worker: the front alone, one session, no model Workers, no cache, no stage bindings', () => {
    const configs = deploymentConfigs('one Worker', models, front, template, 'bundle/index.js');
    expect(configs.map((c) => c.name)).toEqual(['front']);
    const c = read(configs[0]!.toml);
    expect(c.main).toBe('bundle/index.js');
    expect(c.vars).toMatchObject({ DEFAULT_MODEL: 'resnet18v1', MAX_LOADED_MODELS: '1', MODEL_WORKERS: '', CACHE_TTL_SECONDS: '0' });
    expect(c.services).toEqual([]);
  });

  it('Worker per model: the front binds one Worker per other model, each with it as DEFAULT_MODEL', () => {
    const configs = deploymentConfigs('Worker per model', models, front, template, 'bundle/index.js');
    expect(configs.map((c) => c.name)).toEqual(['front', 'model_a', 'model_b']);
    const [f, a, b] = configs.map((c) => read(c.toml));
    expect([...parseModelWorkers(f!.vars.MODEL_WORKERS)]).toEqual([
      ['resnet34v1', 'MODEL_A'],
      ['resnet50v1', 'MODEL_B'],
    ]);
    expect(f!.services).toEqual([
      { binding: 'MODEL_A', service: a!.name },
      { binding: 'MODEL_B', service: b!.name },
    ]);
    expect(a!.vars).toMatchObject({ DEFAULT_MODEL: 'resnet34v1', MAX_LOADED_MODELS: '1', CACHE_TTL_SECONDS: '0' });
    expect(b!.vars).toMatchObject({ DEFAULT_MODEL: 'resnet50v1', MAX_LOADED_MODELS: '1' });
    expect(a!.vars.MODEL_WORKERS ?? '').toBe('');
    expect(new Set([f!.name, a!.name, b!.name]).size).toBe(3);
    for (const c of [f, a, b]) expect(c!.main).toBe('bundle/index.js');
  });

  it('setVar replaces a var or adds it to [vars]', () => {
    expect(setVar('[vars]\nA = "1"\n', 'A', '2')).toBe('[vars]\nA = "2"\n');
    expect(setVar('[vars]\nA = "1"\n', 'B', '3')).toBe('[vars]\nB = "3"\nA = "1"\n');
    expect(() => setVar('name = "x"\n', 'B', '3')).toThrow(/no \[vars\]/);
  });
});

describe('bench/mixed.ts figures', () => {
  it('reads total and the forward hop from Server-Timing', () => {
    expect(serverTimes('model;dur=0.0, decode;dur=4.5, total;dur=31.2, forward;desc="MODEL_A";dur=35.0')).toEqual({ total: 31.2, forward: 35 });
    expect(serverTimes('total;dur=12')).toEqual({ total: 12 });
    expect(serverTimes(null)).toEqual({});
  });

  it('ratios are per model, and all is the mean of the models medians', () => {
    const s = (traffic: 'single' | 'mixed', model: string, total: number): MixedSample => ({
      deployment: 'one Worker',
      traffic,
      model,
      total,
      front: total,
      clientMs: total + 1,
    });
    const samples = [
      ...[10, 11, 12].map((t) => s('single', 'a', t)),
      ...[30, 33, 36].map((t) => s('mixed', 'a', t)),
      ...[100, 101, 102].map((t) => s('single', 'b', t)),
      ...[100, 110, 120].map((t) => s('mixed', 'b', t)),
    ];
    const [a, b, all] = rows(samples, ['a', 'b']);
    expect(a).toMatchObject({ model: 'a', single: 11, mixed: 33, ratio: 3, n: { single: 3, mixed: 3 } });
    expect(b!.ratio).toBeCloseTo(110 / 101, 10);
    expect(all).toMatchObject({ model: 'all', single: 56, mixed: 71.5, n: { single: 6, mixed: 6 } });
    expect(all!.ratio).toBeCloseTo(71.5 / 56, 10);
    expect(all!.clientRatio).toBeCloseTo(72.5 / 57, 10);
    const text = table([a!, b!, all!], 'npx tsx bench/mixed.ts');
    expect(text).toContain('| one Worker | **all** | 56.0 | 71.5 | **1.28x** |');
    expect(text).toContain('- one Worker: mixed/single 1.28x (worst model 3.00x), target 1.15x not met');
  });
});
