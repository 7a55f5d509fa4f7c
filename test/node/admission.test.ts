/** Admission control (src/admission): slots, the memory budget, waiting, order and deadlines. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Admission, POLL_MS, uploadBytes, withDeadline } from '../../src/admission';

import { ApiError } from '../../src/errors';

const MiB = 1024 * 1024;

function admission(over: Partial<ConstructorParameters<typeof Admission>[0]> = {}, heap = { bytes: 80 * MiB }) {
  return new Admission({ maxInFlight: 2, budgetBytes: 112 * MiB, waitMs: 1000, baseline: () => heap.bytes, ...over });
}

/** Settles pending promise callbacks without moving the clock. */
const flush = () => vi.advanceTimersByTimeAsync(0);
/** One round of the waiters' own polling: what a release frees is taken by then. */
const poll = () => vi.advanceTimersByTimeAsync(POLL_MS);

beforeEach(() => void vi.useFakeTimers());
afterEach(() => void vi.useRealTimers());

describe('request slots', () => {
  it('admits up to maxInFlight at once, then queues, then 503 overloaded with Retry-After', async () => {
    const a = admission();
    const r1 = await a.enter();
    await a.enter();
    const third = a.enter();
    const outcome = third.then(
      () => 'admitted',
      (e: unknown) => e,
    );
    await flush();
    expect(a.state).toMatchObject({ inFlight: 2, waiting: 1 });
    await vi.advanceTimersByTimeAsync(999);
    expect(a.state.waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    const err = (await outcome) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect([err.status, err.type, err.retryAfter]).toEqual([503, 'overloaded', 1]);
    expect(err.message).toMatch(/all 2 request slots/);
    expect(a.state).toMatchObject({ inFlight: 2, waiting: 0 });
    r1();
    r1(); // a second release gives nothing back twice
    expect(a.state.inFlight).toBe(1);
  });

  it('hands a freed slot to the longest waiter first', async () => {
    const a = admission({ maxInFlight: 1 });
    const first = await a.enter();
    const order: string[] = [];
    const b = a.enter().then((release) => (order.push('b'), release));
    const c = a.enter().then((release) => (order.push('c'), release));
    await flush();
    first();
    await poll();
    (await b)();
    await poll();
    (await c)();
    expect(order).toEqual(['b', 'c']);
    expect(a.state).toEqual({ inFlight: 0, reservedBytes: 0, waiting: 0 });
  });

  it('waits no longer than the request deadline when it comes before waitMs', async () => {
    const a = admission({ maxInFlight: 1, waitMs: 10_000 });
    await a.enter();
    const late = a.enter(Date.now() + 50).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(50);
    expect(await late).toMatchObject({ type: 'overloaded' });
  });
});

describe('memory budget', () => {
  it('keeps model heap + reserved decode memory under the budget', async () => {
    const a = admission(); // 112 MiB budget, 80 MiB heap: 32 MiB for decodes
    const big = await a.reserve(20 * MiB);
    await a.reserve(10 * MiB);
    const more = a.reserve(8 * MiB);
    let got = false;
    void more.then(() => (got = true));
    await flush();
    expect(got).toBe(false); // 80 + 30 + 8 > 112
    big();
    await flush();
    expect(got).toBe(false); // not woken by the releasing request: it looks again on its own timer
    await poll();
    expect(got).toBe(true);
    expect(a.state.reservedBytes).toBe(18 * MiB);
  });

  it('counts the heap as it is now (it grows when a model loads)', async () => {
    const heap = { bytes: 10 * MiB };
    const a = admission({}, heap);
    const held = await a.reserve(90 * MiB); // fits beside a small heap
    heap.bytes = 95 * MiB; // then a model loads
    const waiting = a.reserve(10 * MiB).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await waiting).toMatchObject({ type: 'overloaded' }); // 95 + 90 + 10 > 112
    held();
    const r = await a.reserve(10 * MiB); // 95 + 10 <= 112
    r();
  });

  it('refuses at once (413) an image that could not fit even in an idle isolate', () => {
    const a = admission();
    expect(() => a.reserve(40 * MiB)).toThrow(/needs 40 MiB to decode.*leaves 32 MiB/);
    try {
      void a.reserve(40 * MiB);
    } catch (e) {
      expect((e as ApiError).status).toBe(413);
    }
  });

  it('serves memory waiters in order: a small request does not overtake a large one', async () => {
    const a = admission();
    const first = await a.reserve(30 * MiB);
    const order: string[] = [];
    const large = a.reserve(25 * MiB).then((r) => (order.push('large'), r));
    const small = a.reserve(1 * MiB).then((r) => (order.push('small'), r));
    await flush();
    expect(order).toEqual([]); // 1 MiB would fit now (30 + 1 <= 32), but it queues behind the large one
    await poll();
    expect(order).toEqual([]);
    first();
    await poll();
    await poll();
    expect(order).toEqual(['large', 'small']);
    (await large)();
    (await small)();
  });

  it('a waiter timing out lets the smaller ones behind it in', async () => {
    const a = admission({ waitMs: 100 });
    await a.reserve(30 * MiB);
    const large = a.reserve(25 * MiB).catch((e: unknown) => e);
    let small = false;
    void a.reserve(2 * MiB).then(() => (small = true));
    await vi.advanceTimersByTimeAsync(100);
    expect(await large).toMatchObject({ type: 'overloaded' });
    await poll();
    expect(small).toBe(true);
  });

  it('skips a waiter whose request the runtime dropped (its timers never ran again)', async () => {
    const a = admission({ waitMs: 100 });
    const held = await a.reserve(30 * MiB);
    void a.reserve(25 * MiB).catch(() => undefined); // queued...
    await flush();
    vi.clearAllTimers(); // ...and its request dropped: its own timer is gone with it
    held();
    expect(a.state.waiting).toBe(1);
    // Still queued ahead within its wait: a later request of its kind lines up behind it.
    const behind = a.reserve(2 * MiB).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    expect(await behind).toMatchObject({ type: 'overloaded' });
    // Well past its give-up time it is taken for dropped, and never handed any memory.
    vi.setSystemTime(Date.now() + 2000);
    const r = await a.reserve(2 * MiB);
    expect(a.state).toEqual({ inFlight: 0, reservedBytes: 2 * MiB, waiting: 0 });
    r();
  });
});

describe('upload memory', () => {
  it('shares the budget with decodes, but a waiting upload never holds up an admitted decode', async () => {
    const a = admission(); // 32 MiB of room beside an 80 MiB heap
    await a.reserveUpload(20 * MiB);
    const upload = a.reserveUpload(20 * MiB).then(
      () => 'admitted',
      (e: unknown) => e,
    );
    await flush();
    expect(a.state).toMatchObject({ reservedBytes: 20 * MiB, waiting: 1 });
    // A decode of an admitted request fits in what is left and goes ahead of the queued upload.
    const decode = await a.reserve(10 * MiB);
    expect(a.state.reservedBytes).toBe(30 * MiB);
    decode();
    await vi.advanceTimersByTimeAsync(1000);
    const refused = await upload;
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).message).toMatch(/memory for the upload stayed taken/);
  });

  it('refuses at once (413) an upload that could not fit even in an idle isolate', () => {
    expect(() => a413()).toThrow(/upload needs 40 MiB to hold/);
    function a413() {
      return admission().reserveUpload(40 * MiB);
    }
  });

  it('costs an upload its announced length, twice for multipart, the body limit when unannounced', () => {
    expect(uploadBytes('image/jpeg', '1000', 20 * MiB)).toEqual({ bytes: 1000, announced: true });
    expect(uploadBytes('multipart/form-data; boundary=x', '1000', 20 * MiB)).toEqual({ bytes: 2000, announced: true });
    expect(uploadBytes('image/png', String(50 * MiB), 20 * MiB)).toEqual({ bytes: 20 * MiB, announced: true });
    expect(uploadBytes('image/png', undefined, 20 * MiB)).toEqual({ bytes: 20 * MiB, announced: false });
    expect(uploadBytes('image/png', '12abc', 20 * MiB)).toEqual({ bytes: 20 * MiB, announced: false });
  });
});

describe('a line predictably longer than the wait', () => {
  /** Takes and gives back `n` holds of `ms` each, one after another, so their length is known. */
  async function learn(take: () => Promise<() => void>, ms: number, n = 3) {
    for (let i = 0; i < n; i++) {
      const release = await take();
      await vi.advanceTimersByTimeAsync(ms);
      release();
    }
  }
  const settled = <T>(p: Promise<T>) => p.then((v) => ({ v }), (e: unknown) => ({ e }));

  it('is refused at once, with Retry-After covering the predicted wait, rather than when its timer runs', async () => {
    const a = admission({ maxInFlight: 1, waitMs: 1000 });
    await learn(() => a.enter(), 600);
    const holder = await a.enter();
    // One hold of about 600 ms ahead: within the wait, so it queues.
    const second = settled(a.enter());
    await flush();
    expect(a.state.waiting).toBe(1);
    // The holder, then the second for another 600 ms: 1200 ms, past the 1000 ms wait.
    const third = await settled(a.enter());
    expect(third).toMatchObject({ e: { status: 503, type: 'overloaded', retryAfter: 2 } });
    expect((third as { e: ApiError }).e.message).toMatch(/all 1 request slots of this isolate are busy and 1 more wait; at recent rates this request would wait about 1200 ms, past the 1000 ms it may/);
    expect(a.state.waiting).toBe(1);
    // The one that was let in line is admitted as predicted.
    await vi.advanceTimersByTimeAsync(600);
    holder();
    await poll();
    expect(await second).toMatchObject({ v: expect.any(Function) });
  });

  it('counts what the holders have already held: a hold near its end leaves room for one more in line', async () => {
    const a = admission({ maxInFlight: 1, waitMs: 1000 });
    await learn(() => a.enter(), 600);
    await a.enter();
    await vi.advanceTimersByTimeAsync(300); // the holder has about 300 ms left
    void settled(a.enter());
    await flush();
    const third = settled(a.enter()); // 300 + 600 = 900 ms: within the wait
    await flush();
    expect(a.state.waiting).toBe(2);
    void third;
  });

  it('predicts nothing before a kind has been held a few times: the waiter queues and its timer decides', async () => {
    const a = admission({ maxInFlight: 1, waitMs: 1000 });
    await learn(() => a.enter(), 5000, 2);
    await a.enter();
    void settled(a.enter());
    const third = settled(a.enter());
    await flush();
    expect(a.state.waiting).toBe(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await third).toMatchObject({ e: { type: 'overloaded' } });
  });

  it('plays the memory line forward by bytes: decodes that cannot run side by side are refused at once', async () => {
    const a = admission({ maxInFlight: 8 }); // 32 MiB for decodes
    await learn(() => a.reserve(20 * MiB), 700);
    await a.reserve(20 * MiB);
    const second = settled(a.reserve(20 * MiB)); // after the holder: about 700 ms
    await flush();
    expect(a.state.waiting).toBe(1);
    // The waiter goes first, and two 20 MiB decodes cannot run side by side: this one starts
    // when the waiter ends, 1400 ms from now. (10 MiB would fit beside the waiter: see below.)
    const third = await settled(a.reserve(20 * MiB));
    expect(third).toMatchObject({ e: { type: 'overloaded', retryAfter: 2 } });
    expect((third as { e: ApiError }).e.message).toMatch(/memory for decoding is taken \(20 MiB reserved.*about 1400 ms/);
    const small = settled(a.reserve(10 * MiB)); // 700 ms, beside the waiter: queued
    await flush();
    expect(a.state.waiting).toBe(2);
    void [second, small];
  });

  it('follows the holds as they shorten: a moving average, not the slowest ever seen', async () => {
    const a = admission({ maxInFlight: 1, waitMs: 1000 });
    await learn(() => a.enter(), 3000);
    const holder = await a.enter();
    expect(await settled(a.enter())).toMatchObject({ e: { type: 'overloaded' } }); // about 3000 ms ahead
    holder();
    await learn(() => a.enter(), 100, 8); // the average is now about 390 ms
    await a.enter();
    void settled(a.enter());
    void settled(a.enter());
    await flush();
    expect(a.state.waiting).toBe(2);
  });
});

describe('withDeadline', () => {
  it('passes a result through and gives up with 503 at the deadline', async () => {
    await expect(withDeadline(Promise.resolve(7), Date.now() + 10, 'x')).resolves.toBe(7);
    const never = new Promise<number>(() => undefined);
    const given = withDeadline(never, Date.now() + 30, 'model resnet50v1').catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(30);
    expect(await given).toMatchObject({ status: 503, type: 'overloaded', message: expect.stringMatching(/model resnet50v1/) });
  });
});
