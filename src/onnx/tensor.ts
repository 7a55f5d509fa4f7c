/**
 * The tensors that cross module and isolate boundaries: the model input, the logits, and the
 * activations a split model's stages hand to each other. Plain typed arrays, so nothing
 * outside src/onnx/session.ts depends on onnxruntime's own Tensor class.
 */
import type { TensorType } from '../models/manifest';

export type Tensor =
  | { type: 'float32'; data: Float32Array; dims: readonly number[] }
  | { type: 'uint8'; data: Uint8Array; dims: readonly number[] };

export const BYTES_PER_ELEMENT: Record<TensorType, number> = { float32: 4, uint8: 1 };

export const elementCount = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

export function float32(data: Float32Array, dims: readonly number[]): Tensor {
  return { type: 'float32', data, dims };
}
