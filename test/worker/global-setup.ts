/**
 * Runs in Node before the workerd tests: builds the test models, computes the reference
 * answers that the parity test holds the Worker to, with onnxruntime-node, and starts the
 * local image host of the URL input tests (test/url-server.ts).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { TestProject } from 'vitest/node';
import { decodeImage } from '../../src/image';
import { preprocessReference } from '../../src/preprocess/reference';
import { ensureTestModel, ensureTestModels, TEST_MODEL_DIR } from '../models';
import { startUrlServer } from '../url-server';
import { startWebhookServer } from '../webhook-server';
import { ROOT } from '../../models/src/paths';

export const PARITY_IMAGES = ['chelsea.jpg', 'camera.png'];

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await ensureTestModels();
  const { dir, manifest } = await ensureTestModel('resnet18v1', 'fp32');
  const spec = manifest.preprocess;
  const size = 3 * spec.cropHeight * spec.cropWidth;

  // The same model and the same input tensor as the Worker will see: decoded by the Worker's
  // decoder and preprocessed by the TypeScript reference (the kernel matches it exactly).
  const tensors = await Promise.all(
    PARITY_IMAGES.map(async (name) => {
      const bytes = new Uint8Array(await readFile(join(ROOT, 'test/fixtures/photos', name)));
      const out = new Float32Array(size);
      preprocessReference(decodeImage(bytes, { maxPixels: 1e8 }), spec, out);
      return out;
    }),
  );
  const session = await ort.InferenceSession.create(join(dir, 'model.onnx'), { intraOpNumThreads: 1 });
  const logits: number[][] = [];
  for (const tensor of tensors) {
    const result = await session.run({ [manifest.input.name]: new ort.Tensor('float32', tensor, [1, 3, spec.cropHeight, spec.cropWidth]) });
    logits.push(Array.from(result[manifest.output.name]!.data as Float32Array));
  }
  await session.release();
  await writeFile(
    join(TEST_MODEL_DIR, 'parity.json'),
    JSON.stringify({ model: manifest.id, sha256: manifest.sha256, images: PARITY_IMAGES, logits }),
  );

  // The image host of the URL input tests (test/worker/url.test.ts), on 127.0.0.1.
  const urlServer = await startUrlServer();
  project.provide('urlServer', urlServer.base);
  // The webhook receiver of the jobs tests (test/worker/jobs*.test.ts).
  const webhookServer = await startWebhookServer();
  project.provide('webhookServer', webhookServer.base);
  return async () => {
    await Promise.all([urlServer.close(), webhookServer.close()]);
  };
}
