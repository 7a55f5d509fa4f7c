/**
 * The model registry: manifests and model files in R2, and the sessions made from them in
 * this isolate. One session per model per isolate, created lazily behind a memoized promise
 * that is dropped on failure, so a model uploaded after a failed request is picked up by the
 * next one. Model bytes are not kept once the session exists.
 *
 * A split model (manifest `stages`) loads only its first stage here; the session handed out
 * chains it with the later stages in their own Workers (src/stages/client.ts). A stage Worker
 * asks for its one stage with `useStage`.
 */
import { withDeadline } from '../admission';
import { getConfig } from '../config';
import { ApiError, modelUnavailable, notFound } from '../errors';
import { createSession, warmUp, wasmHeapBytes, type Session } from '../onnx/session';
import { chainSessions, remoteStage, stageBinding, type RemoteStage, type StageBindings } from '../stages/client';
import { parseManifest } from './validate';
import { MODEL_IDS, manifestKey, modelKey, stageKey, type ModelManifest } from './manifest';

export interface LoadedModel {
  manifest: ModelManifest;
  session: Session;
  /** For a split model in the front Worker: its later stages, each in its own Worker. */
  remote?: RemoteStage[];
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

/** What the manifest says of one file in R2: the whole model or a stage of it. */
type ModelFile = Pick<ModelManifest, 'sha256' | 'bytes' | 'session'> & { input: { name: string }; output: { name: string } };

const MODEL_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export class ModelRegistry {
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly bucket: R2Bucket,
    private readonly maxLoaded: number,
    private readonly bindings: StageBindings = () => undefined,
    private readonly stageTimeoutMs = 10_000,
    /** A load (R2 read, checks, session) taking longer is abandoned, so the next request retries. */
    private readonly loadTimeoutMs = Infinity,
  ) {}

  /** Reads a model's manifest from R2: 404 for ids we have never heard of, 503 for zoo ids not uploaded. */
  async manifest(id: string): Promise<ModelManifest> {
    checkId(id);
    const text = await fromR2(`model ${id}: manifest.json`, async () => {
      const object = await this.bucket.get(manifestKey(id));
      return object ? object.text() : null;
    });
    if (text === null) throw missing(id);
    return parseManifest(id, text);
  }

  /** Every model with a manifest in the bucket, sorted by id; unreadable manifests are reported, not hidden. */
  async list(): Promise<Array<{ id: string; manifest?: ModelManifest; error?: string }>> {
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await fromR2('the model list', () => this.bucket.list({ prefix: 'models/', delimiter: '/', cursor }));
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
    const [manifest, model] = await fromR2(`model ${id}`, () =>
      Promise.all([this.bucket.head(manifestKey(id)), this.bucket.head(modelKey(id))]),
    );
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
  use<T>(id: string, fn: (model: LoadedModel) => Promise<T>, options: { deadlineMs?: number } = {}): Promise<T> {
    checkId(id);
    return this.#use(id, () => this.#createModel(id), fn, options.deadlineMs);
  }

  /**
   * As `use`, for the one stage of a split model that a stage Worker runs. `sha256` is the
   * stage file the front Worker's manifest names: a session of another version (the model was
   * uploaded again since this isolate loaded it) is replaced, and if the bucket still holds
   * another version the call fails, so that stages of two versions are never chained.
   */
  useStage<T>(id: string, stage: number, sha256: string, fn: (model: LoadedModel) => Promise<T>): Promise<T> {
    checkId(id);
    const key = `${id}/stage-${stage}`;
    const version = (m: LoadedModel) => m.manifest.stages?.[stage]?.sha256;
    const entry = this.#entries.get(key);
    if (entry?.loaded && version(entry.loaded) !== sha256) this.#retire(key, entry);
    return this.#use(key, () => this.#createStage(id, stage), (loaded) => {
      if (version(loaded) !== sha256) {
        throw modelUnavailable(`model ${id}: stage ${stage} in the bucket is not the version the front Worker runs (upload in progress?)`);
      }
      return fn(loaded);
    });
  }

  async #use<T>(key: string, create: () => Promise<LoadedModel>, fn: (model: LoadedModel) => Promise<T>, deadlineMs = Infinity): Promise<T> {
    let entry = this.#entries.get(key);
    if (!entry || entry.retired) {
      entry = this.#load(key, create);
    }
    entry.inFlight++;
    entry.lastUsed = Date.now();
    try {
      // A session another request is creating may take long (a cold R2 read, a stuck stage):
      // this request stops waiting at its deadline; the load itself goes on for the others.
      return await fn(await withDeadline(entry.promise, deadlineMs, `model ${key}`));
    } finally {
      entry.inFlight--;
      if (entry.retired && entry.inFlight === 0) void entry.loaded?.session.release();
    }
  }

  #load(key: string, create: () => Promise<LoadedModel>): Entry {
    this.#evict();
    const entry: Entry = { promise: undefined as never, inFlight: 0, lastUsed: Date.now(), retired: false };
    entry.promise = this.#bounded(key, create()).then(
      (loaded) => {
        entry.loaded = loaded;
        return loaded;
      },
      (err: unknown) => {
        // Drop the failed promise so that the next request tries again (e.g. after an upload).
        if (this.#entries.get(key) === entry) this.#entries.delete(key);
        throw err;
      },
    );
    this.#entries.set(key, entry);
    return entry;
  }

  /**
   * `loading`, or a 503 once it has taken loadTimeoutMs: a read from R2 that never ends must
   * not pin a forever-pending promise in the registry. A session that still arrives after
   * that is released at once, so its heap is not leaked.
   */
  #bounded(key: string, loading: Promise<LoadedModel>): Promise<LoadedModel> {
    if (this.loadTimeoutMs === Infinity) return loading;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let late = false;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        late = true;
        reject(modelUnavailable(`model ${key}: loading took longer than ${this.loadTimeoutMs} ms (R2 read or session creation stuck); the next request tries again`));
      }, this.loadTimeoutMs);
    });
    void loading.then(
      (m) => {
        clearTimeout(timer);
        if (late) void m.session.release();
      },
      () => clearTimeout(timer),
    );
    return Promise.race([loading, timeout]);
  }

  async #createModel(id: string): Promise<LoadedModel> {
    const started = Date.now();
    const manifest = await this.manifest(id);
    if (!manifest.stages) {
      const session = await this.#session(id, modelKey(id), 'model.onnx', manifest);
      return { manifest, session, loadMs: Date.now() - started, loadedAt: new Date().toISOString() };
    }
    // Every binding is checked before anything is loaded: a missing one is a deployment error.
    const remote = manifest.stages.slice(1).map((spec, i) => {
      const fetcher = this.bindings(stageBinding(i + 1));
      if (!fetcher) {
        throw modelUnavailable(`model ${id} runs in ${manifest.stages!.length} stages and needs the service binding ${stageBinding(i + 1)} (see README, Deploying)`);
      }
      return remoteStage(fetcher, id, i + 1, spec, this.stageTimeoutMs);
    });
    const first = await this.#session(id, stageKey(id, 0), 'stage 0', manifest.stages[0]!);
    return { manifest, session: chainSessions([first, ...remote]), remote, loadMs: Date.now() - started, loadedAt: new Date().toISOString() };
  }

  async #createStage(id: string, stage: number): Promise<LoadedModel> {
    const started = Date.now();
    const manifest = await this.manifest(id);
    const spec = manifest.stages?.[stage];
    if (!spec) throw notFound(`model ${id} has no stage ${stage}`);
    const session = await this.#session(id, stageKey(id, stage), `stage ${stage}`, spec);
    return { manifest, session, loadMs: Date.now() - started, loadedAt: new Date().toISOString() };
  }

  /** Reads one model file from R2, checks it against its manifest entry and makes a session of it. */
  async #session(id: string, key: string, what: string, file: ModelFile): Promise<Session> {
    const body = await fromR2(`model ${id}: ${what}`, async () => {
      const object = await this.bucket.get(key);
      return object ? object.arrayBuffer() : null;
    });
    if (!body) throw modelUnavailable(`model ${id}: ${what} is missing from the bucket`);
    let bytes: Uint8Array | undefined = new Uint8Array(body);
    if (bytes.byteLength !== file.bytes) {
      throw modelUnavailable(`model ${id}: ${what} has ${bytes.byteLength} bytes, manifest says ${file.bytes}`);
    }
    const digest = hex(await crypto.subtle.digest('SHA-256', bytes));
    if (digest !== file.sha256) {
      throw modelUnavailable(`model ${id}: ${what} fails its sha256 check`);
    }
    try {
      return await createSession(bytes, {
        inputName: file.input.name,
        outputName: file.output.name,
        disablePrepacking: file.session?.disablePrepacking,
      });
    } catch (err) {
      throw modelUnavailable(`model ${id}: ${what}: session creation failed: ${err instanceof Error ? err.message : String(err)}`, err);
    } finally {
      bytes = undefined; // ORT copied the model into its heap; let the isolate reclaim ours now
    }
  }

  /** Makes room for one more session: releases least recently used models beyond the limit. */
  #evict(): void {
    const live = [...this.#entries.entries()]
      .filter(([, e]) => !e.retired)
      .sort(([, a], [, b]) => a.lastUsed - b.lastUsed);
    for (const [key, entry] of live.slice(0, Math.max(0, live.length - this.maxLoaded + 1))) this.#retire(key, entry);
  }

  /** Forgets a session; it is released now, or by its last user (see `#use`). */
  #retire(key: string, entry: Entry): void {
    this.#entries.delete(key);
    entry.retired = true;
    if (entry.inFlight === 0) {
      void entry.promise.then((m) => m.session.release()).catch(() => undefined);
    }
  }
}

/**
 * An R2 call, with its failures (the request, or the body stream breaking mid-read) turned
 * into a 503 that names what was being read: an operator problem that usually passes, never
 * an opaque 500.
 */
async function fromR2<T>(what: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof ApiError) throw err;
    // R2's own message stays in the log: it may name internals the caller has no use for.
    console.error(`${what}: reading from R2 failed:`, err);
    throw modelUnavailable(`${what}: reading from R2 failed; retry shortly`, err);
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

/** One registry per bucket binding, i.e. per isolate; later stages of split models through `bindings`. */
export function getRegistry(
  bucket: R2Bucket,
  maxLoaded: number,
  bindings?: StageBindings,
  timeouts: { stageMs?: number; loadMs?: number } = {},
): ModelRegistry {
  let registry = registries.get(bucket);
  if (!registry) {
    registry = new ModelRegistry(bucket, maxLoaded, bindings, timeouts.stageMs, timeouts.loadMs);
    registries.set(bucket, registry);
  }
  return registry;
}

/** The registry of this isolate's env: its bucket, its session limit, its stage bindings. */
export function registryFor(env: Env): ModelRegistry {
  const bindings: StageBindings = (name) => {
    const value: unknown = (env as unknown as Record<string, unknown>)[name];
    return typeof value === 'object' && value !== null && 'fetch' in value ? (value as Fetcher) : undefined;
  };
  const config = getConfig(env);
  return getRegistry(env.MODELS, config.maxLoadedModels, bindings, { stageMs: config.stageTimeoutMs, loadMs: config.requestTimeoutMs });
}

/** onnxruntime's heap in this isolate, for the models routes (which do not reach into onnx/). */
export const isolateHeapBytes = (): number | undefined => wasmHeapBytes();

/**
 * Warms onnxruntime up at isolate start-up (see `warmUp`), unless the Worker's `WARM_START`
 * var is "false". Entry points await it in global scope, which Workers allow without I/O.
 */
export async function warmStart(env: { WARM_START?: string }): Promise<void> {
  if (env.WARM_START === 'false') return;
  try {
    await warmUp();
  } catch (err) {
    // A Worker that cannot warm up can still serve: the first request initialises onnxruntime.
    console.error('warm start failed:', err);
  }
}
