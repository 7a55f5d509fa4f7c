/**
 * All ten zoo ids through the model pipeline, as `scripts/all-models.sh` runs it at full size:
 * synth -> quantize -> verify -> upload into a local R2 folder. Eighth-width models keep it quick;
 * the code paths are the CLI's own.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MODEL_IDS } from '../../src/models/manifest';
import { verifyModel } from '../../models/src/commands/verify';
import { synthesizeModel } from '../../models/src/synth';
import { uploadModel } from '../../models/src/upload';
import { modelDir, ROOT } from '../../models/src/paths';
import { images, quantizeOne } from '../../models/src/quantize/files';

const work = await mkdtemp(join(tmpdir(), 'edge-resnet-pipeline-'));
afterAll(() => rm(work, { recursive: true, force: true }));

describe('the model pipeline for every zoo id', () => {
  it.each(MODEL_IDS)('%s: synth, quantize, verify, upload', async (id) => {
    const out = join(work, 'models');
    const photos = await images(join(ROOT, 'test/fixtures/photos'));
    const fp32 = await synthesizeModel(id, { dir: modelDir(out, id, 'fp32'), width: 0.125, seed: 7 });
    const int8 = await quantizeOne(id, { out, calibration: photos.slice(0, 4), evaluation: photos.slice(4), method: 'percentile', format: 'qoperator', quiet: true });

    expect(int8).toMatchObject({ id, precision: 'int8-qoperator', weights: 'synthetic', depth: fp32.manifest.depth, version: fp32.manifest.version });
    expect(int8.bytes / fp32.manifest.bytes).toBeLessThan(0.35);
    const fidelity = int8.notes?.fidelity as { cosineMean: number; images: number };
    expect(fidelity.images).toBeGreaterThan(0);
    expect(fidelity.cosineMean).toBeGreaterThan(0.98);

    expect(await verifyModel(modelDir(out, id, 'fp32'))).toEqual([]);
    expect(await verifyModel(modelDir(out, id, 'int8'))).toEqual([]);

    const persistTo = join(work, 'r2');
    await uploadModel(modelDir(out, id, 'int8'), { target: 'local', persistTo });
    // wrangler's local R2 keeps its objects under the persistence folder.
    expect((await readdir(persistTo, { recursive: true })).length).toBeGreaterThan(0);
  }, 180_000);
});
