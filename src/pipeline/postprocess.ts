import type { ImageNetClass } from '../models/labels';

export interface Prediction extends ImageNetClass {
  probability: number;
}

/**
 * Softmax over one row of logits: the model's 1000 probabilities, which every answer (top-K,
 * concepts, moderation decisions) is computed from. Accumulates in float64 and subtracts the
 * max so large logits cannot overflow.
 */
export function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  const exp = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    exp[i] = Math.exp(logits[i]! - max);
    sum += exp[i]!;
  }
  for (let i = 0; i < exp.length; i++) exp[i]! /= sum;
  return exp;
}

/** The `k` most probable classes, best first. */
export function topKOf(probabilities: Float64Array, classes: readonly ImageNetClass[], k: number): Prediction[] {
  const order = Array.from(probabilities.keys()).sort((a, b) => probabilities[b]! - probabilities[a]! || a - b);
  return order.slice(0, k).map((i) => {
    const cls = classes[i];
    if (!cls) throw new Error(`model output has ${probabilities.length} classes, labels have ${classes.length}`);
    return { ...cls, probability: probabilities[i]! };
  });
}

/** Softmax over one row of logits, then the `k` most probable classes, best first. */
export function topK(logits: Float32Array, classes: readonly ImageNetClass[], k: number): Prediction[] {
  return topKOf(softmax(logits), classes, k);
}
