/**
 * Puts a model (model.onnx + manifest.json) into the R2 bucket the Worker reads: the local
 * one that `wrangler dev` uses (--local, optionally another --persist-to folder) or the real
 * one (--remote). Wrangler does the transfer, so credentials and endpoints stay wrangler's.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { manifestKey, modelKey, stageFile, stageKey, type ModelManifest } from '../../src/models/manifest';

export const ROOT = resolve(import.meta.dirname, '../..');
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
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ModelManifest;
  const bucket = options.bucket ?? BUCKET;
  // One put at a time: concurrent wrangler processes on one local R2 folder fail now and then.
  for (const [k] of (manifest.stages ?? []).entries()) {
    await wranglerPut(`${bucket}/${stageKey(manifest.id, k)}`, join(dir, stageFile(k)), 'application/octet-stream', options);
  }
  await wranglerPut(`${bucket}/${modelKey(manifest.id)}`, join(dir, 'model.onnx'), 'application/octet-stream', options);
  await wranglerPut(`${bucket}/${manifestKey(manifest.id)}`, join(dir, 'manifest.json'), 'application/json', options);
  return manifest;
}

function wranglerPut(objectPath: string, file: string, contentType: string, options: UploadOptions): Promise<void> {
  const args = ['wrangler', 'r2', 'object', 'put', objectPath, '--file', file, '--content-type', contentType, `--${options.target}`];
  if (options.persistTo) args.push('--persist-to', options.persistTo);
  return run('npx', args);
}

export function run(command: string, args: string[]): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', fail);
    child.on('close', (code) =>
      code === 0 ? done() : fail(new Error(`${command} ${args.slice(0, 5).join(' ')} failed (${code}):\n${output.slice(-2000)}`)),
    );
  });
}
