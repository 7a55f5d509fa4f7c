/**
 * What the entry points and the models routes need of onnxruntime in this isolate, so that
 * they do not reach into src/onnx: its heap size, and the warm start.
 */
import { warmUp, wasmHeapBytes } from '../onnx/session';

/** onnxruntime's heap in this isolate, for the models routes. */
export const isolateHeapBytes = (): number | undefined => wasmHeapBytes();

/**
 * Warms onnxruntime up at isolate start-up (see `warmUp`), unless the Worker's `WARM_START`
 * var is "false". Entry points await it in global scope, which Workers allow without I/O.
 */
export async function warmStart(env: { WARM_START?: string }): Promise<void> {
  if (env.WARM_START === 'false') return;
  try {
    await warmUp();
  } catch (err) {
    // A Worker that cannot warm up can still serve: the first request initialises onnxruntime.
    console.error('warm start failed:', err);
  }
}
