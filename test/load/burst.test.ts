/**
 * Under load, CI-sized: a cold burst right after a fresh `wrangler dev` (front Worker + both
 * stage Workers, as `npm start` runs them) is ready, on the whole default model and on a split
 * one; then a short soak mixing valid photos, bad inputs, batches and an oversized body. The
 * only failures allowed are admission control's fast 503 `overloaded` with Retry-After
 * (bench/burst.ts and bench/soak.ts are the full-size runs). Part of `npm test`, in a group of
 * its own after the other projects (vitest.config.ts), so that nothing else loads the machine.
 *
 * The clients talk to wrangler dev's runtime, as deployed Workers are reached, on a new
 * connection per request: workerd's HTTP server loses a request sent on a kept-alive connection
 * while the isolate is busy past 5 s after that connection's last answer (keepalive.test.ts pins
 * it, bench/load-fetch.ts says why the tools do not reuse connections). Through wrangler dev's
 * own port, its dev proxy keeps connections alive to the runtime and meets that race, which it
 * answers as 503 "Your worker restarted mid-request" (PROXY_RESET): one test pins that down as
 * the only thing that fails there.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coldBurst, describeRound } from '../../bench/burst';
import { renderSoak, soak } from '../../bench/soak';
import { PROXY_RESET, WranglerDev } from '../../bench/workerd';

let persistTo: string;

beforeAll(async () => {
  persistTo = await mkdtemp(join(tmpdir(), 'edge-resnet-burst-test-'));
});

afterAll(async () => {
  await Promise.all([...WranglerDev.live].map((d) => d.stop()));
  if (persistTo) await rm(persistTo, { recursive: true, force: true });
});

describe('cold bursts and a soak under wrangler dev', () => {
  it('a cold burst (8 clients x 8 s) on the whole default model fails no request', async () => {
    const figure = await coldBurst({ model: 'resnet18v1', split: false, clients: 8, seconds: 8, rounds: 1, persistTo, hangMs: 30_000 });
    const round = figure.rounds[0]!;
    expect(round.ok, describeRound(round)).toBeGreaterThan(0);
    expect(round.failures, describeRound(round)).toEqual([]);
    // Admission 503s are allowed, but they must be fast.
    if (round.admissionMaxMs !== null) expect(round.admissionMaxMs).toBeLessThan(10_000);
  }, 240_000);

  it('a cold burst (8 clients x 8 s) on a model split across three Workers fails no request', async () => {
    // The tests' eighth-width resnet101v1, split in three stages (test/models.ts).
    const figure = await coldBurst({ model: 'resnet101v1', split: true, clients: 8, seconds: 8, rounds: 1, persistTo, hangMs: 30_000 });
    const round = figure.rounds[0]!;
    expect(figure.stages).toBe(3);
    expect(round.ok, describeRound(round)).toBeGreaterThan(0);
    expect(round.failures, describeRound(round)).toEqual([]);
  }, 240_000);

  it("through wrangler dev's proxy, the only failures are the proxy's own dropped connections", async () => {
    const figure = await coldBurst({ model: 'resnet18v1', split: false, clients: 8, seconds: 8, rounds: 1, persistTo, hangMs: 30_000, via: 'proxy' });
    const round = figure.rounds[0]!;
    expect(round.ok, describeRound(round)).toBeGreaterThan(0);
    // Whatever else fails is ours: a 5xx from the Worker, a hang, a connection refused.
    const ours = round.failures.filter((f) => !(f.status === 503 && PROXY_RESET.test(f.body)));
    expect(ours, describeRound(round)).toEqual([]);
  }, 240_000);

  it('a 45 s soak: no 5xx but admission 503s, no hang, no heap growth after warm-up', async () => {
    const result = await soak({ minutes: 0.75, concurrency: 4, persistTo, hangMs: 30_000, heapEveryMs: 3000 });
    const report = renderSoak(result);
    expect(result.reasons, report).toEqual([]);
    expect(result.byStatus['200'] ?? 0, report).toBeGreaterThan(10);
    // Every kind of bad input was sent and answered.
    for (const status of ['413', '415', '422']) expect(result.byStatus[status] ?? 0, report).toBeGreaterThan(0);
  }, 240_000);
});
