/**
 * Puts a model (model.onnx + manifest.json) into the R2 bucket the Worker reads: the local
 * one that `wrangler dev` uses (--local, optionally another --persist-to folder) or the real
 * one (--remote). Wrangler does the transfer, so credentials and endpoints stay wrangler's.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { manifestKey, modelKey, stageFile, stageKey, type ModelManifest } from '../../src/models/manifest';
import { readManifest } from './paths';
import { run } from './run';

export const BUCKET = 'edge-resnet-models';

export interface UploadOptions {
  target: 'local' | 'remote';
  /** Local persistence folder (wrangler's --persist-to); default: wrangler's own `.wrangler/state`. */
  persistTo?: string;
  bucket?: string;
}

/**
 * Uploads `<dir>/model.onnx`, its stages when it is split, and `<dir>/manifest.json`; the
 * manifest goes last so readers never see it without its files.
 */
export async function uploadModel(dir: string, options: UploadOptions): Promise<ModelManifest> {
  const manifest = await readManifest(dir);
  const bucket = options.bucket ?? BUCKET;
  const files = [
    { key: modelKey(manifest.id), file: join(dir, 'model.onnx') },
    ...(manifest.stages ?? []).map((_, k) => ({ key: stageKey(manifest.id, k), file: join(dir, stageFile(k)) })),
  ];
  // One wrangler process for all model files (each process costs seconds to start), one object
  // at a time: concurrent writers into one local R2 folder failed now and then.
  const list = join(await mkdtemp(join(tmpdir(), 'edge-resnet-upload-')), 'files.json');
  try {
    await writeFile(list, JSON.stringify(files));
    await wrangler(['r2', 'bulk', 'put', bucket, '--filename', list, '--content-type', 'application/octet-stream', '--concurrency', '1'], options);
  } finally {
    await rm(dirname(list), { recursive: true, force: true });
  }
  await wrangler(['r2', 'object', 'put', `${bucket}/${manifestKey(manifest.id)}`, '--file', join(dir, 'manifest.json'), '--content-type', 'application/json'], options);
  return manifest;
}

function wrangler(args: string[], options: UploadOptions): Promise<void> {
  return run('npx', ['wrangler', ...args, `--${options.target}`, ...(options.persistTo ? ['--persist-to', options.persistTo] : [])]);
}
