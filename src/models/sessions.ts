/**
 * The sessions of this isolate: at most `maxLoaded`, each created once behind a memoized
 * promise that is dropped on failure (so a model uploaded after a failed request is picked up
 * by the next one), evicted least recently used first, and never released while a request is
 * still running on it. Keys are a model id, or `<id>/stage-<k>` for a stage Worker's stage.
 */
import { withDeadline } from '../admission';
import { modelUnavailable } from '../errors';
import type { Session } from '../onnx/session';
import type { RemoteStage } from '../stages/client';
import type { ModelManifest } from './manifest';

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

export class SessionCache {
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly maxLoaded: number,
    /** A load (R2 read, checks, session) taking longer is abandoned, so the next request retries. */
    private readonly loadTimeoutMs = Infinity,
  ) {}

  /** The models that have a live session in this isolate. */
  loaded(): LoadedModel[] {
    return [...this.#entries.values()].flatMap((e) => (e.loaded && !e.retired ? [e.loaded] : []));
  }

  /** Forgets the session under `key` if it is loaded and `stale` says so (another version, say). */
  dropIf(key: string, stale: (model: LoadedModel) => boolean): void {
    const entry = this.#entries.get(key);
    if (entry?.loaded && stale(entry.loaded)) this.#retire(key, entry);
  }

  /**
   * Runs `fn` with the session under `key`, made by `create` first if needed. The session is not
   * released by eviction while `fn` runs.
   */
  async use<T>(key: string, create: () => Promise<LoadedModel>, fn: (model: LoadedModel) => Promise<T>, deadlineMs = Infinity): Promise<T> {
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
   * not pin a forever-pending promise in the cache. A session that still arrives after that is
   * released at once, so its heap is not leaked.
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

  /** Makes room for one more session: releases least recently used models beyond the limit. */
  #evict(): void {
    const live = [...this.#entries.entries()]
      .filter(([, e]) => !e.retired)
      .sort(([, a], [, b]) => a.lastUsed - b.lastUsed);
    for (const [key, entry] of live.slice(0, Math.max(0, live.length - this.maxLoaded + 1))) this.#retire(key, entry);
  }

  /** Forgets a session; it is released now, or by its last user (see `use`). */
  #retire(key: string, entry: Entry): void {
    this.#entries.delete(key);
    entry.retired = true;
    if (entry.inFlight === 0) {
      void entry.promise.then((m) => m.session.release()).catch(() => undefined);
    }
  }
}
