/**
 * How a tensor travels between the isolates of a split model: the raw little-endian elements
 * as the body, type and shape in headers. No JSON and no copies beyond the body itself: a
 * hand-over of a batch of 8 is a few MB.
 */
import { badRequest } from '../errors';
import type { TensorSpec } from '../models/manifest';
import { BYTES_PER_ELEMENT, elementCount, type Tensor } from '../onnx/tensor';

export const TYPE_HEADER = 'X-Tensor-Type';
export const DIMS_HEADER = 'X-Tensor-Dims';
/** The sha256 of the stage file the caller's manifest names: stages of two versions never chain. */
export const VERSION_HEADER = 'X-Stage-Sha256';
/** A stage reports its isolate's onnxruntime heap with every answer (see wasmHeapBytes). */
export const HEAP_HEADER = 'X-Wasm-Heap-Bytes';

export function tensorHeaders(t: Tensor): Record<string, string> {
  return { 'Content-Type': 'application/octet-stream', [TYPE_HEADER]: t.type, [DIMS_HEADER]: t.dims.join(',') };
}

export function tensorBody(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * The tensor in a request or response, checked against what the stage expects: its type, and
 * every dimension but a symbolic (string) one. Anything else is refused with a 400 that names
 * the mismatch: a stage must never run on a tensor meant for another.
 */
export async function readTensor(message: Request | Response, expected: TensorSpec, maxBatch: number): Promise<Tensor> {
  const type = message.headers.get(TYPE_HEADER);
  const dimsText = message.headers.get(DIMS_HEADER) ?? '';
  if (type !== expected.type) throw badRequest(`tensor ${expected.name}: type ${type ?? 'missing'}, expected ${expected.type}`);
  const dims = dimsText.split(',').map(Number);
  const shapeOk =
    dims.length === expected.shape.length &&
    dims.every((d, i) => Number.isSafeInteger(d) && d > 0 && (typeof expected.shape[i] === 'string' || d === expected.shape[i])) &&
    dims[0]! <= maxBatch;
  if (!shapeOk) throw badRequest(`tensor ${expected.name}: dims [${dimsText.slice(0, 40)}], expected [${expected.shape.join(', ')}] with a batch of at most ${maxBatch}`);
  const bytes = await message.arrayBuffer();
  const needed = elementCount(dims) * BYTES_PER_ELEMENT[type];
  if (bytes.byteLength !== needed) throw badRequest(`tensor ${expected.name}: ${bytes.byteLength} bytes, dims [${dimsText}] need ${needed}`);
  return type === 'float32' ? { type, data: new Float32Array(bytes), dims } : { type, data: new Uint8Array(bytes), dims };
}
