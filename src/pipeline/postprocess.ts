import type { ImageNetClass } from '../models/labels';

export interface Prediction extends ImageNetClass {
  probability: number;
}

/**
 * Softmax over one row of logits, then the `k` most probable classes, best first.
 * Accumulates in float64 and subtracts the max so large logits cannot overflow.
 */
export function topK(logits: Float32Array, classes: readonly ImageNetClass[], k: number): Prediction[] {
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  const exp = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    exp[i] = Math.exp(logits[i]! - max);
    sum += exp[i]!;
  }
  const order = Array.from(exp.keys()).sort((a, b) => exp[b]! - exp[a]! || a - b);
  return order.slice(0, k).map((i) => {
    const cls = classes[i];
    if (!cls) throw new Error(`model output has ${logits.length} classes, labels have ${classes.length}`);
    return { ...cls, probability: exp[i]! / sum };
  });
}
