/**
 * The model registry: manifests and model files in R2, and the sessions made from them in
 * this isolate. One session per model per isolate, created lazily behind a memoized promise
 * that is dropped on failure, so a model uploaded after a failed request is picked up by the
 * next one. Model bytes are not kept once the session exists.
 */
import { ApiError, modelUnavailable, notFound } from '../errors';
import { createSession, type Session } from '../onnx/session';
import { parseManifest } from './validate';
import { MODEL_IDS, manifestKey, modelKey, type ModelManifest } from './manifest';

export interface LoadedModel {
  manifest: ModelManifest;
  session: Session;
  /** Milliseconds spent reading from R2, verifying and creating the session. */
  loadMs: number;
  loadedAt: string;
}

interface Entry {
  promise: Promise<LoadedModel>;
  loaded?: LoadedModel;
  inFlight: number;
  lastUsed: number;
  /** Evicted while requests were still using it: released when the last one finishes. */
  retired: boolean;
}

const MODEL_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export class ModelRegistry {
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly bucket: R2Bucket,
    private readonly maxLoaded: number,
  ) {}

  /** Reads a model's manifest from R2: 404 for ids we have never heard of, 503 for zoo ids not uploaded. */
  async manifest(id: string): Promise<ModelManifest> {
    checkId(id);
    const object = await this.bucket.get(manifestKey(id));
    if (!object) throw missing(id);
    return parseManifest(id, await object.text());
  }

  /** Every model with a manifest in the bucket, sorted by id; unreadable manifests are reported, not hidden. */
  async list(): Promise<Array<{ id: string; manifest?: ModelManifest; error?: string }>> {
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.bucket.list({ prefix: 'models/', delimiter: '/', cursor });
      for (const prefix of page.delimitedPrefixes) ids.push(prefix.slice('models/'.length, -1));
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    ids.sort();
    return Promise.all(
      ids.map(async (id) => {
        try {
          return { id, manifest: await this.manifest(id) };
        } catch (err) {
          return { id, error: err instanceof Error ? err.message : String(err) };
        }
      }),
    );
  }

  /** Whether both files of a model are in the bucket, without reading them. */
  async available(id: string): Promise<boolean> {
    checkId(id);
    const [manifest, model] = await Promise.all([this.bucket.head(manifestKey(id)), this.bucket.head(modelKey(id))]);
    return manifest !== null && model !== null;
  }

  /** The models that have a live session in this isolate. */
  loaded(): LoadedModel[] {
    return [...this.#entries.values()].flatMap((e) => (e.loaded && !e.retired ? [e.loaded] : []));
  }

  /**
   * Runs `fn` with the model's session, loading it first if needed. The session is not
   * released by eviction while `fn` runs.
   */
  async use<T>(id: string, fn: (model: LoadedModel) => Promise<T>): Promise<T> {
    checkId(id);
    let entry = this.#entries.get(id);
    if (!entry || entry.retired) {
      entry = this.#load(id);
    }
    entry.inFlight++;
    entry.lastUsed = Date.now();
    try {
      return await fn(await entry.promise);
    } finally {
      entry.inFlight--;
      if (entry.retired && entry.inFlight === 0) void entry.loaded?.session.release();
    }
  }

  #load(id: string): Entry {
    this.#evict();
    const entry: Entry = { promise: undefined as never, inFlight: 0, lastUsed: Date.now(), retired: false };
    entry.promise = this.#create(id).then(
      (loaded) => {
        entry.loaded = loaded;
        return loaded;
      },
      (err: unknown) => {
        // Drop the failed promise so that the next request tries again (e.g. after an upload).
        if (this.#entries.get(id) === entry) this.#entries.delete(id);
        throw err;
      },
    );
    this.#entries.set(id, entry);
    return entry;
  }

  async #create(id: string): Promise<LoadedModel> {
    const started = Date.now();
    const manifest = await this.manifest(id);
    const object = await this.bucket.get(modelKey(id));
    if (!object) throw modelUnavailable(`model ${id}: model.onnx is missing from the bucket`);
    let bytes: Uint8Array | undefined = new Uint8Array(await object.arrayBuffer());
    if (bytes.byteLength !== manifest.bytes) {
      throw modelUnavailable(`model ${id}: model.onnx has ${bytes.byteLength} bytes, manifest says ${manifest.bytes}`);
    }
    const digest = hex(await crypto.subtle.digest('SHA-256', bytes));
    if (digest !== manifest.sha256) {
      throw modelUnavailable(`model ${id}: model.onnx fails its sha256 check`);
    }
    let session: Session;
    try {
      session = await createSession(bytes, {
        inputName: manifest.input.name,
        outputName: manifest.output.name,
        disablePrepacking: manifest.session?.disablePrepacking,
      });
    } catch (err) {
      throw modelUnavailable(`model ${id}: session creation failed: ${err instanceof Error ? err.message : String(err)}`, err);
    } finally {
      bytes = undefined; // ORT copied the model into its heap; let the isolate reclaim ours now
    }
    return { manifest, session, loadMs: Date.now() - started, loadedAt: new Date().toISOString() };
  }

  /** Makes room for one more session: releases least recently used models beyond the limit. */
  #evict(): void {
    const live = [...this.#entries.entries()]
      .filter(([, e]) => !e.retired)
      .sort(([, a], [, b]) => a.lastUsed - b.lastUsed);
    for (const [id, entry] of live.slice(0, Math.max(0, live.length - this.maxLoaded + 1))) {
      this.#entries.delete(id);
      entry.retired = true;
      if (entry.inFlight === 0) {
        void entry.promise.then((m) => m.session.release()).catch(() => undefined);
      }
    }
  }
}

function checkId(id: string): void {
  if (!MODEL_ID.test(id)) throw notFound(`unknown model "${id.slice(0, 64)}"`);
}

function missing(id: string): ApiError {
  // A zoo model we know of but that has not been uploaded is an operator problem (503);
  // any other name is the caller's mistake (404).
  return (MODEL_IDS as readonly string[]).includes(id)
    ? modelUnavailable(`model ${id} is not in the bucket (upload it with the models CLI)`)
    : notFound(`unknown model "${id}"`);
}

function hex(buffer: ArrayBuffer): string {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

const registries = new WeakMap<R2Bucket, ModelRegistry>();

/** One registry per bucket binding, i.e. per isolate. */
export function getRegistry(bucket: R2Bucket, maxLoaded: number): ModelRegistry {
  let registry = registries.get(bucket);
  if (!registry) {
    registry = new ModelRegistry(bucket, maxLoaded);
    registries.set(bucket, registry);
  }
  return registry;
}
