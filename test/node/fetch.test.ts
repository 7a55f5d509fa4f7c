/**
 * The zoo downloader against a local HTTP server (the zoo itself is unreachable from CI):
 * verification, cache hits, resume with Range, servers that ignore Range, corrupt bytes,
 * redirects, and a tiny generated ResNet installed end to end.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyModel } from '../../models/src/commands/verify';
import { download, fetchZooModel, graphIO, type Catalog, type CatalogEntry } from '../../models/src/fetch';
import { decodeModel, encodeModel, graphOf, valueInfo, DataType } from '../../models/src/onnx';
import { buildResNet } from '../../models/src/resnet';
import { readManifest } from '../../models/src/paths';

const FILE = randomBytes(3 * 1024 * 1024 + 123);
const SHA = createHash('sha256').update(FILE).digest('hex');
const WRONG = Buffer.from(FILE.map((b, i) => (i === FILE.length >> 1 ? b ^ 0xff : b)));

interface Seen {
  path: string;
  range: string | undefined;
}

let server: Server;
let base: string;
let tmp: string;
let seen: Seen[] = [];
/** Paths served by the handler below; tests add the tiny models. */
const files = new Map<string, Buffer>([
  ['/file', FILE],
  ['/wrong', WRONG],
]);
/** How many requests to /cut have been answered (the first one is cut halfway). */
let cuts = 0;

function serveRange(req: IncomingMessage, res: ServerResponse, body: Buffer, honourRange = true): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m && honourRange) {
    const start = Number(m[1]);
    if (start >= body.length) {
      res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
      return;
    }
    res.writeHead(206, {
      'Content-Length': body.length - start,
      'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}`,
      'Accept-Ranges': 'bytes',
    });
    res.end(body.subarray(start));
    return;
  }
  res.writeHead(200, { 'Content-Length': body.length, 'Accept-Ranges': honourRange ? 'bytes' : 'none' });
  res.end(body);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? '/';
  seen.push({ path, range: req.headers.range });
  if (path === '/redirect') {
    res.writeHead(302, { Location: '/hop' }).end();
  } else if (path === '/hop') {
    res.writeHead(307, { Location: `${base}/file` }).end();
  } else if (path === '/no-range') {
    serveRange(req, res, FILE, false);
  } else if (path === '/cut' && cuts++ === 0) {
    // Promise the whole file, send half of it, then drop the connection.
    res.writeHead(200, { 'Content-Length': FILE.length });
    res.write(FILE.subarray(0, FILE.length >> 1), () => setTimeout(() => res.socket?.destroy(), 100));
  } else if (path === '/cut') {
    serveRange(req, res, FILE);
  } else if (path === '/stall') {
    res.writeHead(200, { 'Content-Length': FILE.length });
    res.write(FILE.subarray(0, 1 << 20));
    // ...and nothing more: the client's idle timeout must end it.
  } else if (files.has(path)) {
    serveRange(req, res, files.get(path)!);
  } else {
    res.writeHead(404).end();
  }
}

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  tmp = await mkdtemp(join(tmpdir(), 'edge-resnet-fetch-'));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
  await rm(tmp, { recursive: true, force: true });
});

let dir: string;
let caseNo = 0;
beforeEach(async () => {
  seen = [];
  dir = join(tmp, `case-${caseNo++}`);
  await mkdir(dir, { recursive: true });
});

const opts = { sha256: SHA, bytes: FILE.length };
const hashOf = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex');

describe('download', () => {
  it('downloads, verifies and renames into place; reports progress', async () => {
    const dest = join(dir, 'model.onnx');
    const progress: number[] = [];
    const r = await download(`${base}/file`, dest, { ...opts, onProgress: (p) => progress.push(p.received) });
    expect(r).toEqual({ path: dest, cached: false, resumedFrom: 0, transferred: FILE.length });
    expect(await hashOf(dest)).toBe(SHA);
    expect(existsSync(`${dest}.part`)).toBe(false);
    expect(progress.at(-1)).toBe(FILE.length);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(seen).toEqual([{ path: '/file', range: undefined }]);
  });

  it('is a cache hit, without any request, when dest already has the right bytes', async () => {
    const dest = join(dir, 'model.onnx');
    await writeFile(dest, FILE);
    let calls = 0;
    const counting: typeof fetch = (...args) => (calls++, fetch(...args));
    const r = await download(`${base}/file`, dest, { ...opts, fetchImpl: counting });
    expect(r.cached).toBe(true);
    expect(calls).toBe(0);
    expect(seen).toEqual([]);
  });

  it('replaces a dest whose bytes are wrong', async () => {
    const dest = join(dir, 'model.onnx');
    await writeFile(dest, WRONG);
    const r = await download(`${base}/file`, dest, opts);
    expect(r.cached).toBe(false);
    expect(await hashOf(dest)).toBe(SHA);
  });

  it('keeps the .part of a cut connection and resumes it with a Range request', async () => {
    cuts = 0;
    const dest = join(dir, 'model.onnx');
    const first = download(`${base}/cut`, dest, opts);
    await expect(first).rejects.toThrow(/model\.onnx: download interrupted at \d+ of \d+ bytes.*run again to resume/);
    expect(existsSync(dest)).toBe(false);
    const partSize = (await stat(`${dest}.part`)).size;
    expect(partSize).toBeGreaterThan(0);
    expect(partSize).toBeLessThanOrEqual(FILE.length >> 1);

    const r = await download(`${base}/cut`, dest, opts);
    expect(seen).toEqual([
      { path: '/cut', range: undefined },
      { path: '/cut', range: `bytes=${partSize}-` },
    ]);
    expect(r).toEqual({ path: dest, cached: false, resumedFrom: partSize, transferred: FILE.length - partSize });
    expect(await hashOf(dest)).toBe(SHA);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('times out a stalled transfer, keeps the .part, and resumes it', async () => {
    const dest = join(dir, 'model.onnx');
    await expect(download(`${base}/stall`, dest, { ...opts, idleTimeoutMs: 300 })).rejects.toThrow(/no data for 300 ms/);
    const partSize = (await stat(`${dest}.part`)).size;
    expect(partSize).toBe(1 << 20);
    const r = await download(`${base}/file`, dest, opts);
    expect(r.resumedFrom).toBe(1 << 20);
    expect(seen.at(-1)).toEqual({ path: '/file', range: `bytes=${1 << 20}-` });
    expect(await hashOf(dest)).toBe(SHA);
  });

  it('rejects corrupt bytes: names the file and both hashes, leaves neither dest nor .part', async () => {
    const dest = join(dir, 'resnet18-v1-7.onnx');
    const actual = createHash('sha256').update(WRONG).digest('hex');
    const err = await download(`${base}/wrong`, dest, opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain('resnet18-v1-7.onnx');
    expect((err as Error).message).toContain(`expected ${SHA}`);
    expect((err as Error).message).toContain(`got ${actual}`);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('rejects a file of the wrong size', async () => {
    const dest = join(dir, 'model.onnx');
    await expect(download(`${base}/file`, dest, { ...opts, bytes: FILE.length - 1 })).rejects.toThrow(
      /model\.onnx: server sent more than the expected/,
    );
    expect(existsSync(`${dest}.part`)).toBe(false);
    expect(existsSync(dest)).toBe(false);
  });

  it('starts over when the server answers a Range request with 200', async () => {
    const dest = join(dir, 'model.onnx');
    // A .part whose bytes would fail verification if they were kept and appended to.
    await writeFile(`${dest}.part`, WRONG.subarray(0, 1000));
    const r = await download(`${base}/no-range`, dest, opts);
    expect(seen).toEqual([{ path: '/no-range', range: 'bytes=1000-' }]);
    expect(r.resumedFrom).toBe(0);
    expect(r.transferred).toBe(FILE.length);
    expect(await hashOf(dest)).toBe(SHA);
  });

  it('restarts when the server rejects the range (416)', async () => {
    const dest = join(dir, 'model.onnx');
    files.set('/short', FILE.subarray(0, 500));
    await writeFile(`${dest}.part`, FILE.subarray(0, 1000));
    // The server's file is shorter than the .part: 416, then a fresh request (which gets
    // too few bytes from this server, so the download is reported incomplete).
    await expect(download(`${base}/short`, dest, opts)).rejects.toThrow(/model\.onnx: download incomplete \(500 of/);
    expect(seen).toEqual([
      { path: '/short', range: 'bytes=1000-' },
      { path: '/short', range: undefined },
    ]);
  });

  it('checks a complete .part without a request', async () => {
    const dest = join(dir, 'model.onnx');
    await writeFile(`${dest}.part`, FILE);
    const r = await download(`${base}/file`, dest, opts);
    expect(seen).toEqual([]);
    expect(r.transferred).toBe(0);
    expect(await hashOf(dest)).toBe(SHA);
  });

  it('follows redirects, keeping the Range header', async () => {
    const dest = join(dir, 'model.onnx');
    await writeFile(`${dest}.part`, FILE.subarray(0, 4096));
    const r = await download(`${base}/redirect`, dest, opts);
    expect(seen).toEqual([
      { path: '/redirect', range: 'bytes=4096-' },
      { path: '/hop', range: 'bytes=4096-' },
      { path: '/file', range: 'bytes=4096-' },
    ]);
    expect(r.resumedFrom).toBe(4096);
    expect(await hashOf(dest)).toBe(SHA);
  });

  it('reports HTTP errors with the status and keeps any .part', async () => {
    const dest = join(dir, 'model.onnx');
    await writeFile(`${dest}.part`, FILE.subarray(0, 10));
    await expect(download(`${base}/missing`, dest, opts)).rejects.toThrow(/model\.onnx: HTTP 404/);
    expect((await stat(`${dest}.part`)).size).toBe(10);
  });
});

describe('fetchZooModel', () => {
  const tiny = buildResNet({ version: 'v1', depth: 18, width: 1 / 16 });
  const tinyFixed = buildResNet({ version: 'v1', depth: 18, width: 1 / 16, batch: 1 });
  const entry = (over: Partial<CatalogEntry>): CatalogEntry => ({
    id: 'resnet18v1',
    file: 'resnet18-v1-7.onnx',
    depth: 18,
    version: 'v1',
    opset: 7,
    precision: 'fp32',
    url: `${base}/zoo/resnet18-v1-7.onnx`,
    sha256: createHash('sha256').update(tiny.bytes).digest('hex'),
    bytes: tiny.bytes.byteLength,
    top1: 69.93,
    top5: 89.29,
    ...over,
  });

  beforeAll(() => {
    files.set('/zoo/resnet18-v1-7.onnx', Buffer.from(tiny.bytes));
    files.set('/zoo/fixed.onnx', Buffer.from(tinyFixed.bytes));
    files.set('/zoo/flipped.onnx', Buffer.from(tiny.bytes.map((b, i) => (i === 1000 ? b ^ 1 : b))));
  });

  it('downloads into the cache and installs fp32 with a manifest read from the graph', async () => {
    const catalog: Catalog = { models: [entry({})] };
    const cache = join(dir, 'cache');
    const out = join(dir, 'out');
    const r = await fetchZooModel('resnet18v1', { cache, out, catalog });
    expect(r.dir).toBe(join(out, 'resnet18v1', 'fp32'));
    expect(existsSync(join(cache, 'resnet18-v1-7.onnx'))).toBe(true);
    const manifest = await readManifest(r.dir);
    expect(manifest).toMatchObject({
      id: 'resnet18v1',
      family: 'resnet',
      version: 'v1',
      depth: 18,
      precision: 'fp32',
      weights: 'real',
      labels: 'imagenet-1k',
      source: `${base}/zoo/resnet18-v1-7.onnx`,
      sha256: entry({}).sha256,
      bytes: tiny.bytes.byteLength,
      input: { name: tiny.inputName, shape: ['N', 3, 224, 224] },
      output: { name: tiny.outputName, shape: ['N', 1000] },
      preprocess: { resizeShorter: 256, cropHeight: 224, cropWidth: 224 },
      notes: { zoo: { id: 'resnet18v1', file: 'resnet18-v1-7.onnx', top1: 69.93, top5: 89.29 } },
    });
    expect(await verifyModel(r.dir)).toEqual([]);

    // Again: a cache hit (no request), same install.
    seen = [];
    const again = await fetchZooModel('resnet18v1', { cache, out, catalog });
    expect(again.download.cached).toBe(true);
    expect(seen).toEqual([]);
    // --force downloads again.
    const forced = await fetchZooModel('resnet18v1', { cache, out, catalog, force: true });
    expect(forced.download.cached).toBe(false);
    expect(seen).toHaveLength(1);
  });

  it('records a fixed batch dimension as a number', async () => {
    const catalog: Catalog = {
      models: [
        entry({
          url: `${base}/zoo/fixed.onnx`,
          sha256: createHash('sha256').update(tinyFixed.bytes).digest('hex'),
          bytes: tinyFixed.bytes.byteLength,
        }),
      ],
    };
    const r = await fetchZooModel('resnet18v1', { cache: join(dir, 'cache'), out: join(dir, 'out'), catalog });
    expect(r.manifest.input.shape).toEqual([1, 3, 224, 224]);
    expect(r.manifest.output.shape).toEqual([1, 1000]);
  });

  it("installs the zoo's int8 ResNet-50 as resnet50v1's int8 variant", async () => {
    const catalog: Catalog = {
      models: [
        entry({ id: 'resnet50v1-12-int8', file: 'resnet50-v1-12-int8.onnx', depth: 50, opset: 12, precision: 'int8-qoperator', top5: null }),
      ],
    };
    const r = await fetchZooModel('resnet50v1-12-int8', { cache: join(dir, 'cache'), out: join(dir, 'out'), catalog });
    expect(r.dir).toBe(join(dir, 'out', 'resnet50v1', 'int8'));
    const manifest = await readManifest(r.dir);
    expect(manifest).toMatchObject({ id: 'resnet50v1', depth: 50, precision: 'int8-qoperator', weights: 'real' });
    expect(manifest.notes).toMatchObject({ zoo: { id: 'resnet50v1-12-int8', top1: 69.93, top5: null } });
    expect(await verifyModel(r.dir)).toEqual([]);
  });

  it('fails on an unknown id and on a bad download, installing nothing', async () => {
    const out = join(dir, 'out');
    await expect(fetchZooModel('resnet18v1', { out, catalog: { models: [] } })).rejects.toThrow(/not in the zoo catalog/);
    const catalog: Catalog = { models: [entry({ url: `${base}/zoo/flipped.onnx` })] };
    await expect(fetchZooModel('resnet18v1', { cache: join(dir, 'cache'), out, catalog })).rejects.toThrow(
      /resnet18-v1-7\.onnx: sha256 mismatch/,
    );
    expect(existsSync(join(out, 'resnet18v1'))).toBe(false);
  });
});

describe('graphIO', () => {
  it('skips initializers listed as graph inputs (IR 3 exports, as in the zoo opset-7 files)', () => {
    const tiny = buildResNet({ version: 'v2', depth: 18, width: 1 / 16 });
    const model = decodeModel(tiny.bytes);
    const graph = graphOf(model);
    for (const t of graph.initializer.slice(0, 5)) {
      graph.input.push(valueInfo(t.name, DataType.FLOAT, t.dims.map((d) => Number(d))));
    }
    const io = graphIO(encodeModel(model));
    expect(io.input).toEqual({ name: tiny.inputName, shape: ['N', 3, 224, 224] });
    expect(io.output).toEqual({ name: tiny.outputName, shape: ['N', 1000] });
  });
});
