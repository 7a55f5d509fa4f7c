/**
 * The model registry: manifests and model files in R2 (./store.ts: reads, size and sha256
 * checks), the sessions made from them in this isolate (./sessions.ts: one per model, lazily,
 * evicted least recently used), and how a model becomes a session (./load.ts: whole, or split
 * across stage Workers). The rest of the Worker reaches all of that through this file only;
 * it just wires them. (The manifest format, ./manifest.ts, and the labels are plain data.)
 *
 * A split model (manifest `stages`) loads only its first stage here; the session handed out
 * chains it with the later stages in their own Workers (src/stages/client.ts). A stage Worker
 * asks for its one stage with `useStage`.
 */
import { getConfig } from '../config';
import { modelUnavailable } from '../errors';
import type { StageBindings } from '../stages/client';
import type { ModelManifest } from './manifest';
import { loadModel, loadStage } from './load';
import { SessionCache, type LoadedModel } from './sessions';
import { checkId, ModelStore } from './store';

export type { LoadedModel } from './sessions';
export { isolateHeapBytes, warmStart } from './isolate';

export class ModelRegistry {
  readonly #store: ModelStore;
  readonly #sessions: SessionCache;

  constructor(
    bucket: R2Bucket,
    maxLoaded: number,
    private readonly bindings: StageBindings = () => undefined,
    private readonly stageTimeoutMs = 10_000,
    /** A load (R2 read, checks, session) taking longer is abandoned, so the next request retries. */
    loadTimeoutMs = Infinity,
  ) {
    this.#store = new ModelStore(bucket);
    this.#sessions = new SessionCache(maxLoaded, loadTimeoutMs);
  }

  /** Reads a model's manifest from R2: 404 for ids we have never heard of, 503 for zoo ids not uploaded. */
  manifest(id: string): Promise<ModelManifest> {
    return this.#store.manifest(id);
  }

  /** Every model with a manifest in the bucket, sorted by id; unreadable manifests are reported, not hidden. */
  list(): Promise<Array<{ id: string; manifest?: ModelManifest; error?: string }>> {
    return this.#store.list();
  }

  /** Whether both files of a model are in the bucket, without reading them. */
  available(id: string): Promise<boolean> {
    return this.#store.available(id);
  }

  /** The models that have a live session in this isolate. */
  loaded(): LoadedModel[] {
    return this.#sessions.loaded();
  }

  /**
   * Runs `fn` with the model's session, loading it first if needed. The session is not
   * released by eviction while `fn` runs.
   */
  use<T>(id: string, fn: (model: LoadedModel) => Promise<T>, options: { deadlineMs?: number } = {}): Promise<T> {
    checkId(id);
    return this.#sessions.use(id, () => loadModel(this.#store, id, this.bindings, this.stageTimeoutMs), fn, options.deadlineMs);
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
    this.#sessions.dropIf(key, (loaded) => version(loaded) !== sha256);
    return this.#sessions.use(key, () => loadStage(this.#store, id, stage), (loaded) => {
      if (version(loaded) !== sha256) {
        throw modelUnavailable(`model ${id}: stage ${stage} in the bucket is not the version the front Worker runs (upload in progress?)`);
      }
      return fn(loaded);
    });
  }
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
