import { existsSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { MODEL_IDS } from '../../../src/models/manifest';
import { DEFAULT_CACHE, fetchZooModel, ZOO_CATALOG, type DownloadProgress, type FetchZooResult } from '../fetch';
import { parse, type Command } from './command';
import { DEFAULT_OUT, modelDir, readManifest } from '../paths';

const usage =
  'fetch <id|all|zoo file id> [--cache models/cache] [--out models/out] [--force]   download real zoo weights (verified, resumable)';

export const fetchCommand: Command = {
  name: 'fetch',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, usage, {
      cache: { type: 'string', default: DEFAULT_CACHE },
      out: { type: 'string', default: DEFAULT_OUT },
      force: { type: 'boolean', default: false },
    });
    const target = positionals[0];
    if (!target) throw new Error(`which model? usage: ${usage}`);
    // `all` means the ten architectures, as for the other commands; the extra zoo files
    // (resnet50v1-12-int8, ...) would overwrite each other's folders, so they are asked for by id.
    const ids = target === 'all' ? [...MODEL_IDS] : [target];
    for (const id of ids) {
      if (!ZOO_CATALOG.models.some((m) => m.id === id)) {
        throw new Error(`"${id}" is not in models/catalog.json; one of: all, ${ZOO_CATALOG.models.map((m) => m.id).join(', ')}`);
      }
    }

    for (const catalogId of ids) {
      const bar = new ProgressBar(catalogId);
      let r: FetchZooResult;
      try {
        r = await fetchZooModel(catalogId, {
          cache: values.cache,
          out: values.out,
          force: values.force,
          onProgress: (p) => bar.update(p),
        });
      } finally {
        bar.stop();
      }
      const how = r.download.cached
        ? 'cached'
        : r.download.resumedFrom > 0
          ? `resumed at ${mb(r.download.resumedFrom)} MB`
          : `downloaded ${mb(r.download.transferred)} MB`;
      const { input, output } = r.manifest;
      const io = `${input.name} [${input.shape.join(', ')}] -> ${output.name} [${output.shape.join(', ')}]`;
      console.log(`${catalogId}: ${how}, installed ${r.dir} (${r.manifest.precision}, ${io})`);
      if (r.variant === 'fp32') await warnStaleInt8(values.out, r.id);
    }
  },
};

/** An int8 variant quantized from the synthetic fp32 model no longer matches the real one. */
async function warnStaleInt8(out: string, id: string): Promise<void> {
  const dir = modelDir(out, id, 'int8');
  if (!existsSync(join(dir, 'manifest.json'))) return;
  const int8 = await readManifest(dir);
  if (int8.weights !== 'real') console.warn(`  note: ${dir} has ${int8.weights} weights; run quantize again on the real fp32 model`);
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);

/** Bytes, MB/s over this transfer (not counting resumed bytes) and ETA; created on the first progress event. */
class ProgressBar {
  private bar: cliProgress.SingleBar | undefined;
  private started = 0;
  private resumedFrom = 0;

  constructor(private readonly label: string) {}

  update(p: DownloadProgress): void {
    if (!this.bar || p.resumedFrom !== this.resumedFrom) {
      this.bar?.stop();
      this.bar = new cliProgress.SingleBar(
        {
          format: `${this.label} {bar} {percentage}% | {mb}/{totalMb} MB | {speed} MB/s | ETA {eta_formatted}`,
          hideCursor: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      this.started = performance.now();
      this.resumedFrom = p.resumedFrom;
      this.bar.start(p.total, p.received, { mb: mb(p.received), totalMb: mb(p.total), speed: '-' });
    }
    const seconds = (performance.now() - this.started) / 1000;
    const speed = seconds > 0.2 ? ((p.received - this.resumedFrom) / 1e6 / seconds).toFixed(1) : '-';
    this.bar.update(p.received, { mb: mb(p.received), totalMb: mb(p.total), speed });
  }

  stop(): void {
    this.bar?.stop();
  }
}
