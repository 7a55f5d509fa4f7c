/**
 * Warm start: importing a Worker entry point initialises onnxruntime and runs the warm-up
 * network (WARM_START defaults to on), before any request and before any model is loaded.
 */
import { describe, expect, it } from 'vitest';
import '../../src/index';
import { isolateHeapBytes, registryFor, warmStart } from '../../src/models/registry';
import { call, testEnv } from './helpers';

describe('warm start', () => {
  it('has onnxruntime running before the first request, with no model loaded', async () => {
    expect(registryFor(testEnv).loaded()).toEqual([]);
    expect(isolateHeapBytes()).toBeGreaterThan(1 << 20);
    const res = await call('/models');
    expect(((await res.json()) as { isolate: { wasmHeapBytes: number } }).isolate.wasmHeapBytes).toBe(isolateHeapBytes());
  });

  it('runs once per isolate, however often it is asked for', async () => {
    const before = isolateHeapBytes();
    await Promise.all([warmStart({}), warmStart({ WARM_START: 'true' })]);
    expect(isolateHeapBytes()).toBe(before);
  });
});
