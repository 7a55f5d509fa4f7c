/**
 * Downloads the model zoo's ResNets (`npm run models -- fetch <id>`) and installs them where
 * the rest of the tooling expects built models: `<out>/<id>/<fp32|int8>/model.onnx` plus a
 * manifest whose input/output facts are read from the ONNX graph itself.
 *
 * Downloads go to `<cache>/<file>.part`, resume with HTTP Range after an interruption, and are
 * renamed to `<cache>/<file>` only once size and sha256 match the catalog (models/catalog.json,
 * from the zoo's Git LFS pointers), so a file in the cache is always a verified one.
 */
import { createHash, type Hash } from 'node:crypto';
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import catalogJson from '../catalog.json' with { type: 'json' };
import { IMAGENET_PREPROCESS, type ModelManifest, type Precision } from '../../src/models/manifest';
import { decodeModel, graphOf, toNumber, type IValueInfoProto, type LongLike } from './onnx';
import { DEFAULT_OUT, modelDir, ROOT, type Variant } from './paths';

export const DEFAULT_CACHE = join(ROOT, 'models/cache');

// ---------------------------------------------------------------------------------------------
// Catalog

export interface CatalogEntry {
  id: string;
  file: string;
  depth: 18 | 34 | 50 | 101 | 152;
  version: 'v1' | 'v2';
  opset: number;
  precision: Precision;
  url: string;
  sha256: string;
  bytes: number;
  top1: number | null;
  top5: number | null;
}

export interface Catalog {
  source?: string;
  models: CatalogEntry[];
}

/** models/catalog.json; the JSON import widens the literal unions, hence the cast. */
export const ZOO_CATALOG = catalogJson as Catalog;

export function catalogEntry(id: string, catalog: Catalog = ZOO_CATALOG): CatalogEntry {
  const entry = catalog.models.find((m) => m.id === id);
  if (!entry) throw new Error(`"${id}" is not in the zoo catalog; one of: ${catalog.models.map((m) => m.id).join(', ')}`);
  return entry;
}

/**
 * Where a catalog file installs: the model id is the architecture's (the zoo's int8
 * ResNet-50 v1 is a variant of resnet50v1, not a model of its own), the variant its precision.
 */
export function installTarget(entry: CatalogEntry): { id: string; variant: Variant } {
  return { id: `resnet${entry.depth}${entry.version}`, variant: entry.precision === 'fp32' ? 'fp32' : 'int8' };
}

// ---------------------------------------------------------------------------------------------
// Download

export interface DownloadProgress {
  /** Bytes of the file on disk so far, including what a resumed .part already had. */
  received: number;
  total: number;
  /** Bytes the .part had when this transfer started (0 for a fresh download). */
  resumedFrom: number;
}

export interface DownloadOptions {
  sha256: string;
  bytes: number;
  onProgress?: (p: DownloadProgress) => void;
  /** Injected in tests; defaults to the global fetch (undici), which follows redirects. */
  fetchImpl?: typeof fetch;
  signal?: AbortSignal;
  /** Abort when no data arrives for this long; the .part stays for the next resume. Default 60 s. */
  idleTimeoutMs?: number;
}

export interface DownloadResult {
  path: string;
  /** `dest` already had the right bytes: no request was made. */
  cached: boolean;
  /** Bytes reused from an earlier interrupted download (0 when none or when the server refused Range). */
  resumedFrom: number;
  /** Bytes transferred over the network by this call. */
  transferred: number;
}

const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/** Streamed sha256 of a file (never holds the file in memory); `hash` lets a caller continue it. */
async function hashFile(path: string, hash: Hash = createHash('sha256')): Promise<Hash> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash;
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

function mismatch(file: string, expected: string, actual: string, detail = ''): Error {
  return new Error(`${basename(file)}: sha256 mismatch${detail}: expected ${expected}, got ${actual}`);
}

/**
 * Downloads `url` to `dest`, verified by size and sha256. Resumes `<dest>.part` when there is
 * one, restarts when the server ignores the Range request. Throws with the file's name on a
 * hash or size mismatch (the .part is deleted: resuming bad bytes can never succeed), and on
 * network errors and timeouts (the .part is kept: its bytes are a prefix of what was sent).
 */
export async function download(url: string, dest: string, opts: DownloadOptions): Promise<DownloadResult> {
  const expected = opts.sha256.toLowerCase();
  const part = `${dest}.part`;
  const name = basename(dest);

  if ((await sizeOf(dest)) === opts.bytes && (await hashFile(dest)).digest('hex') === expected) {
    return { path: dest, cached: true, resumedFrom: 0, transferred: 0 };
  }
  await rm(dest, { force: true });
  await mkdir(dirname(dest), { recursive: true });

  let offset = (await sizeOf(part)) ?? 0;
  if (offset > opts.bytes) {
    await unlink(part);
    offset = 0;
  }
  if (offset === opts.bytes) {
    // A complete .part (interrupted between the last byte and the rename): a Range request
    // for bytes=<size>- would get 416, so check it as it is.
    const actual = (await hashFile(part)).digest('hex');
    if (actual === expected) {
      await rename(part, dest);
      return { path: dest, cached: false, resumedFrom: offset, transferred: 0 };
    }
    await unlink(part);
    offset = 0;
  }

  // At most two requests: a resume, and a fresh one when the server rejects the range (416)
  // or answers a different one than asked for.
  for (let attempt = 0; ; attempt++) {
    const result = await transfer(url, part, offset, opts);
    if (result === 'restart' && attempt === 0) {
      await rm(part, { force: true });
      offset = 0;
      continue;
    }
    if (result === 'restart') throw new Error(`${name}: the server keeps answering the wrong range for ${url}`);
    const { hash, size, resumedFrom, transferred } = result;
    if (size < opts.bytes) {
      // A clean end of stream short of the size (no Content-Length, or a proxy): resumable.
      throw new Error(`${name}: download incomplete (${size} of ${opts.bytes} bytes); run again to resume`);
    }
    const actual = hash.digest('hex');
    if (size !== opts.bytes || actual !== expected) {
      await rm(part, { force: true });
      throw mismatch(dest, expected, actual, size !== opts.bytes ? ` (${size} bytes, expected ${opts.bytes})` : '');
    }
    await rename(part, dest);
    return { path: dest, cached: false, resumedFrom, transferred };
  }
}

interface Transferred {
  hash: Hash;
  size: number;
  resumedFrom: number;
  transferred: number;
}

/** One HTTP request appending to (or rewriting) the .part; 'restart' when its range is unusable. */
async function transfer(url: string, part: string, offset: number, opts: DownloadOptions): Promise<Transferred | 'restart'> {
  const name = basename(part, '.part');
  const idle = new AbortController();
  const idleMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(new Error(`no data for ${idleMs} ms`)), idleMs);
  };
  const signal = opts.signal ? AbortSignal.any([opts.signal, idle.signal]) : idle.signal;

  try {
    arm();
    const headers: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-` } : {};
    let res: Response;
    try {
      res = await (opts.fetchImpl ?? fetch)(url, { headers, redirect: 'follow', signal });
    } catch (err) {
      throw new Error(`${name}: request to ${url} failed: ${reason(err, signal)}`, { cause: err });
    }

    let resumedFrom = 0;
    if (offset > 0 && res.status === 206) {
      if (rangeStart(res.headers.get('content-range')) !== offset) {
        await res.body?.cancel();
        return 'restart';
      }
      resumedFrom = offset;
    } else if (offset > 0 && res.status === 416) {
      await res.body?.cancel();
      return 'restart';
    } else if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`${name}: HTTP ${res.status} ${res.statusText} from ${res.url || url}`);
    }
    // A 200 to a Range request is the whole file: the .part is rewritten from byte 0.
    if (!res.body) throw new Error(`${name}: empty response from ${res.url || url}`);

    const hash = resumedFrom > 0 ? await hashFile(part) : createHash('sha256');
    let size = resumedFrom;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        arm();
        size += chunk.length;
        // Fail as soon as the server sends more than the file has, not after 240 MB.
        if (size > opts.bytes) return done(new Error(`${name}: server sent more than the expected ${opts.bytes} bytes`));
        hash.update(chunk);
        opts.onProgress?.({ received: size, total: opts.bytes, resumedFrom });
        done(null, chunk);
      },
    });
    opts.onProgress?.({ received: size, total: opts.bytes, resumedFrom });
    try {
      await pipeline(
        Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
        counter,
        createWriteStream(part, { flags: resumedFrom > 0 ? 'a' : 'w' }),
      );
    } catch (err) {
      if (size > opts.bytes) {
        await rm(part, { force: true });
        throw err;
      }
      throw new Error(`${name}: download interrupted at ${size} of ${opts.bytes} bytes (${reason(err, signal)}); run again to resume`, {
        cause: err,
      });
    }
    return { hash, size, resumedFrom, transferred: size - resumedFrom };
  } finally {
    clearTimeout(timer);
  }
}

function reason(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) return signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err instanceof Error ? err.message : String(err)}${cause}`;
}

/** First byte of a `Content-Range: bytes <first>-<last>/<total>` header. */
function rangeStart(header: string | null): number | undefined {
  const m = header ? /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header.trim()) : null;
  return m ? Number(m[1]) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Install

type Dim = number | string;

/**
 * The model's image input and logits output, as the graph declares them. Graphs exported with
 * IR version 3 (the zoo's opset-7 files) also list every initializer as a graph input; the real
 * input is the one no initializer feeds.
 */
export function graphIO(bytes: Uint8Array): {
  input: ModelManifest['input'];
  output: ModelManifest['output'];
  opset: number | undefined;
} {
  const model = decodeModel(bytes);
  const graph = graphOf(model);
  const initialized = new Set(graph.initializer.map((t) => t.name));
  const inputs = graph.input.filter((v) => !initialized.has(v.name));
  if (inputs.length !== 1) {
    throw new Error(`expected one non-initializer graph input, found ${inputs.map((v) => v.name).join(', ') || 'none'}`);
  }
  if (graph.output.length !== 1) throw new Error(`expected one graph output, found ${graph.output.map((v) => v.name).join(', ')}`);
  const input = inputs[0]!;
  const output = graph.output[0]!;
  const inShape = shapeOf(input);
  const outShape = shapeOf(output);
  const [n, c, h, w] = inShape;
  if (inShape.length !== 4 || c !== 3 || typeof h !== 'number' || typeof w !== 'number') {
    throw new Error(`input "${input.name}" has shape [${inShape.join(', ')}], expected [N, 3, H, W]`);
  }
  if (h !== IMAGENET_PREPROCESS.cropHeight || w !== IMAGENET_PREPROCESS.cropWidth) {
    const { cropHeight, cropWidth } = IMAGENET_PREPROCESS;
    throw new Error(`input "${input.name}" is ${h}x${w}; the zoo preprocessing crops ${cropHeight}x${cropWidth}`);
  }
  const [on, classes] = outShape;
  if (outShape.length !== 2 || typeof classes !== 'number') {
    throw new Error(`output "${output.name}" has shape [${outShape.join(', ')}], expected [N, classes]`);
  }
  const opset = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx')?.version;
  return {
    input: { name: input.name, shape: [n!, c, h, w] },
    output: { name: output.name, shape: [on!, classes] },
    opset: opset == null ? undefined : toNumber(opset as number | LongLike),
  };
}

/** Fixed dims as numbers, symbolic ones as their dim_param; '?' where the graph says neither. */
function shapeOf(v: IValueInfoProto): Dim[] {
  const dims = v.type?.tensorType?.shape?.dim;
  if (!dims) throw new Error(`graph value "${v.name ?? ''}" has no tensor shape`);
  return dims.map((d) => (d.dimParam ? d.dimParam : d.dimValue != null ? toNumber(d.dimValue as number | LongLike) : '?'));
}

export interface FetchZooOptions {
  cache?: string;
  out?: string;
  /** Download again even when the cache has a verified copy (a partial .part is discarded too). */
  force?: boolean;
  /** Injected in tests; defaults to models/catalog.json. */
  catalog?: Catalog;
  onProgress?: (p: DownloadProgress) => void;
  fetchImpl?: typeof fetch;
  signal?: AbortSignal;
  idleTimeoutMs?: number;
}

export interface FetchZooResult {
  /** The installed model's id (`resnet50v1` for the catalog's `resnet50v1-12-int8`). */
  id: string;
  variant: Variant;
  dir: string;
  manifest: ModelManifest;
  download: DownloadResult;
}

/** Downloads a catalog file into the cache and installs it with its manifest. */
export async function fetchZooModel(catalogId: string, opts: FetchZooOptions = {}): Promise<FetchZooResult> {
  const entry = catalogEntry(catalogId, opts.catalog);
  const cache = opts.cache ?? DEFAULT_CACHE;
  const cached = join(cache, entry.file);
  if (opts.force) await Promise.all([rm(cached, { force: true }), rm(`${cached}.part`, { force: true })]);
  const result = await download(entry.url, cached, {
    sha256: entry.sha256,
    bytes: entry.bytes,
    onProgress: opts.onProgress,
    fetchImpl: opts.fetchImpl,
    signal: opts.signal,
    idleTimeoutMs: opts.idleTimeoutMs,
  });

  // Decoding holds the whole file (up to 240 MB) once; initializers stay views into it.
  const io = graphIO(new Uint8Array(await readFile(cached)));
  const { id, variant } = installTarget(entry);
  const manifest: ModelManifest = {
    id,
    family: 'resnet',
    version: entry.version,
    depth: entry.depth,
    precision: entry.precision,
    input: io.input,
    output: io.output,
    preprocess: IMAGENET_PREPROCESS,
    labels: 'imagenet-1k',
    sha256: entry.sha256.toLowerCase(),
    bytes: entry.bytes,
    weights: 'real',
    source: entry.url,
    notes: {
      zoo: { id: entry.id, file: entry.file, opset: io.opset ?? entry.opset, top1: entry.top1, top5: entry.top5 },
    },
  };

  const dir = modelDir(opts.out ?? DEFAULT_OUT, id, variant);
  await mkdir(dir, { recursive: true });
  // The old manifest goes first so nothing reads it beside the new model; the model is copied
  // (a reflink where the filesystem can) rather than hard-linked, because synth and quantize
  // rewrite model.onnx in place, which would corrupt a linked cache file.
  await rm(join(dir, 'manifest.json'), { force: true });
  const tmp = join(dir, 'model.onnx.tmp');
  await copyFile(cached, tmp, constants.COPYFILE_FICLONE);
  await rename(tmp, join(dir, 'model.onnx'));
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { id, variant, dir, manifest, download: result };
}
