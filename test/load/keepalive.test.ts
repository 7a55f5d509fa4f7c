/**
 * Pins the local runtime's behaviour that the load tools work around (bench/load-fetch.ts): with
 * workerd alone and none of our code, a request sent on a kept-alive connection is lost when the
 * isolate stays busy past 5 s after that connection's last answer, and one on a new connection
 * is served. If a workerd upgrade makes the first case pass, this test fails: the load tools
 * may then reuse connections again, and the README's account of the dropped connections needs
 * its update.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { race, startBusyWorker } from '../../bench/keepalive-race';
import type { WorkerdAlone } from '../../bench/workerd-alone';

let w: WorkerdAlone;

beforeAll(async () => {
  w = await startBusyWorker();
});

afterAll(async () => {
  await w?.close();
});

describe("workerd's keep-alive race while the isolate is busy", () => {
  it('serves a kept-alive connection when the isolate is back within 5 s of its last answer', async () => {
    expect((await race(w, { busyMs: 3500, idleMs: 500, connection: 'kept-alive' })).second).toBe('answered');
  });

  it('resets a kept-alive connection whose request waits past 5 s after its last answer', async () => {
    expect((await race(w, { busyMs: 6000, idleMs: 500, connection: 'kept-alive' })).second).toMatch(/ECONNRESET|other side closed|socket/i);
  });

  it('serves the same request on a new connection', async () => {
    expect((await race(w, { busyMs: 6000, idleMs: 500, connection: 'new' })).second).toBe('answered');
  });
});
