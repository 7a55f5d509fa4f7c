/**
 * The short fuzz run (test/fuzz/README.md): every target for a fixed number of inputs from a
 * fixed seed, so a failure here reproduces with the same seed (`npx tsx test/fuzz/run.ts`
 * is the long run). Then every input in test/fuzz/regressions/ replayed: each was a
 * violation once and must keep the invariant now.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fuzz, runCase, type Failure } from '../fuzz/harness';
import { TARGETS } from '../fuzz/targets/index';

/** Inputs per target: sized to take at most ~20 s each on one core (test/fuzz/README.md has the figures). */
const SHORT_RUN: Record<string, number> = { jpeg: 6000, png: 20000, gif: 20000, webp: 15000, exif: 50000, wire: 3000, upload: 3000 };
const SEED = 20261202;
/** CI shares 2 cores with the rest of the suite: the per-input time bound gets this factor. */
const SLACK = 3;

const REGRESSIONS = new URL('../fuzz/regressions/', import.meta.url);
const regressionFiles = readdirSync(REGRESSIONS).filter((f) => f.endsWith('.bin')).sort();

/**
 * Regressions whose bug is reported and not fixed yet: they must still fail (it.fails), and
 * start failing the suite when the fix lands, to be moved out of this list.
 */
const OPEN: Record<string, string> = {};

const describeFailure = (f: Failure): string => `${f.kind}: ${f.message}\n  input: ${f.how}\n${f.stack ?? ''}`;

describe('fuzz: short run', () => {
  for (const [name, target] of Object.entries(TARGETS)) {
    it(`${name}: ${SHORT_RUN[name]} inputs from seed ${SEED}`, async () => {
      const cpu = process.cpuUsage();
      const stats = await fuzz(target, { seed: SEED, numRuns: SHORT_RUN[name]!, slack: SLACK });
      const { user, system } = process.cpuUsage(cpu);
      const statuses = Object.entries(stats.statuses).map(([k, v]) => `${k}: ${v}`).join(', ');
      console.log(`fuzz ${name}: ${stats.executions} inputs, ok ${stats.ok}, ${statuses}; ${((user + system) / 1e6).toFixed(1)} s CPU, slowest ${stats.slowestMs.toFixed(0)} ms`);
      expect(stats.failures.map(describeFailure)).toEqual([]);
      expect(stats.executions).toBe(SHORT_RUN[name]);
      // The mutations must reach both outcomes, or the target tests little.
      expect(stats.ok).toBeGreaterThan(0);
      if (name !== 'exif') expect(stats.executions - stats.ok).toBeGreaterThan(0); // readExifOrientation never refuses
      // A catch-all turning a TypeError or RangeError into a 4xx hides a bug: none may show.
      expect(stats.masked).toEqual({});
    }, 180_000);
  }
});

describe('fuzz: regressions', () => {
  it('has a target for every regression input', () => {
    for (const f of regressionFiles) expect(Object.keys(TARGETS)).toContain(f.split('-')[0]);
  });
  for (const file of regressionFiles) {
    const open = OPEN[file];
    (open ? it.fails : it)(open ? `${file} (open: ${open})` : file, async () => {
      const target = TARGETS[file.split('-')[0]!]!;
      const bytes = new Uint8Array(readFileSync(new URL(file, REGRESSIONS)));
      const { failure, outcome } = await runCase(target, { bytes, how: file }, SLACK);
      expect(failure && describeFailure(failure)).toBeNull();
      expect(outcome.masked).toBeUndefined();
    });
  }
});
