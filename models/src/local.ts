/** Models built on this machine: `<dir>/<id>/model.onnx` + `manifest.json`. */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelManifest } from '../../src/models/manifest';

export async function readManifest(dir: string): Promise<ModelManifest> {
  return JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ModelManifest;
}

export async function localModels(root: string): Promise<Array<{ id: string; manifest: ModelManifest }>> {
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  const found = await Promise.all(
    entries
      .filter((e) => e.isDirectory())
      .map(async (e) => {
        try {
          return [{ id: e.name, manifest: await readManifest(join(root, e.name)) }];
        } catch {
          return [];
        }
      }),
  );
  return found.flat().sort((a, b) => a.id.localeCompare(b.id));
}

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
