import type { ModelManifest } from '../models/manifest';
import type { Session } from '../onnx/session';
import { float32, type Tensor } from '../onnx/tensor';

/**
 * Runs `count` preprocessed images (CHW float32, back to back in `batch`) through the model:
 * their logits, row by row. One session run for the whole batch when the model's batch
 * dimension is symbolic; models exported with a fixed batch (the zoo's opset-7 files have 1)
 * run in chunks of that size, the last one zero-padded. Only the Session interface is used, so
 * the models CLI's `eval` runs the same code over onnxruntime-node.
 */
export async function runBatch(session: Session, manifest: ModelManifest, batch: Float32Array, count: number): Promise<Float32Array> {
  const [n, c, h, w] = manifest.input.shape;
  const dims = [c, h as number, w as number];
  if (typeof n !== 'number') return logitsOf(await session.run(float32(batch, [count, ...dims])));
  const imageSize = batch.length / count;
  const chunks: Float32Array[] = [];
  for (let start = 0; start < count; start += n) {
    const chunk = new Float32Array(n * imageSize);
    chunk.set(batch.subarray(start * imageSize, Math.min(count, start + n) * imageSize));
    const out = logitsOf(await session.run(float32(chunk, [n, ...dims])));
    chunks.push(out.subarray(0, (Math.min(count, start + n) - start) * (out.length / n)));
  }
  const logits = new Float32Array(chunks.reduce((a, x) => a + x.length, 0));
  chunks.reduce((offset, x) => (logits.set(x, offset), offset + x.length), 0);
  return logits;
}

function logitsOf(output: Tensor): Float32Array {
  if (output.type !== 'float32') throw new Error(`model output is ${output.type}, expected float32 logits`);
  return output.data;
}
