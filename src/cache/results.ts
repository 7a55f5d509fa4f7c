/**
 * The result cache: an image's 1000 logits under (SHA-256 of its bytes, the model's version).
 * Top-K, concepts and decisions are all computed from them, so every route and option shares
 * one entry. The logits are the model's own float32 output, stored as their 4000 bytes: a hit
 * goes through the same softmax as a miss and gives bit-identical probabilities (storing the
 * float64 probabilities as float32 would not).
 *
 * A cache is an optimisation, never a dependency: a store that throws is logged and counts as
 * a miss, and writes go through `waitUntil` so that they never delay or fail an answer.
 */
import type { ModelManifest } from '../models/manifest';
import type { ResultStore } from './stores';

/**
 * Part of every key. Bump it with any change to decoding or preprocessing that changes the
 * probabilities of the same bytes through the same model, so that no deploy serves results
 * its predecessor computed differently.
 */
export const PIPELINE_VERSION = 1;

/** `X-Cache`: HIT when every image of the answer came from the cache, BYPASS with no cache. */
export type CacheStatus = 'HIT' | 'MISS' | 'BYPASS';

export interface ResultCacheOptions {
  /** Read in order; a hit in a later store is copied into the earlier ones. */
  stores: ResultStore[];
  ttlSeconds: number;
  /** The execution context's waitUntil: writes finish after the answer is sent. */
  waitUntil: (promise: Promise<unknown>) => void;
  /** Where store failures go (default console.error). */
  log?: (message: string, err: unknown) => void;
}

export class ResultCache {
  readonly #stores: ResultStore[];
  readonly #ttl: number;
  readonly #waitUntil: (promise: Promise<unknown>) => void;
  readonly #log: (message: string, err: unknown) => void;

  constructor(options: ResultCacheOptions) {
    this.#stores = options.stores;
    this.#ttl = options.ttlSeconds;
    this.#waitUntil = options.waitUntil;
    this.#log = options.log ?? ((message, err) => console.error(message, err));
  }

  /** Which stores back this cache, in read order (for tests and logs). */
  get backing(): string[] {
    return this.#stores.map((s) => s.name);
  }

  /** The key of the result of the image `digest` (imageDigest) through `manifest`'s model. */
  async key(digest: string, manifest: ModelManifest): Promise<string> {
    return `v${PIPELINE_VERSION}/${await modelVersion(manifest)}/${digest}`;
  }

  /**
   * The logits under `key`, or undefined: not cached, expired, not `length` values long (an
   * entry written for another output size is no answer), or every store failing.
   */
  async get(key: string, length: number): Promise<Float32Array | undefined> {
    for (const [i, store] of this.#stores.entries()) {
      let bytes: ArrayBuffer | null;
      try {
        bytes = await store.get(key);
      } catch (err) {
        this.#log(`result cache: ${store.name} read of ${key} failed (answering as a miss):`, err);
        continue;
      }
      if (bytes === null) continue;
      if (bytes.byteLength !== length * 4) {
        this.#log(`result cache: ${store.name} entry ${key} has ${bytes.byteLength} bytes, expected ${length * 4}; ignored`, undefined);
        continue;
      }
      // The nearer stores missed it: fill them, so the next read stops there.
      for (const nearer of this.#stores.slice(0, i)) this.#write(nearer, key, bytes);
      return new Float32Array(bytes);
    }
    return undefined;
  }

  /** Stores `logits` under `key` in every store, after the answer (waitUntil); never throws. */
  put(key: string, logits: Float32Array): void {
    // A copy of exactly these values: `logits` is usually a view into a whole batch's output.
    const bytes = logits.slice().buffer;
    for (const store of this.#stores) this.#write(store, key, bytes);
  }

  #write(store: ResultStore, key: string, bytes: ArrayBuffer): void {
    let writing: Promise<void>;
    try {
      writing = store.put(key, bytes, this.#ttl);
    } catch (err) {
      writing = Promise.reject(err);
    }
    const logged = writing.catch((err: unknown) => this.#log(`result cache: ${store.name} write of ${key} failed:`, err));
    try {
      this.#waitUntil(logged);
    } catch (err) {
      // No execution context to extend (a caller without one): the write may be cut short.
      this.#log('result cache: waitUntil failed:', err);
    }
  }
}

/** Hex SHA-256 of an image's bytes: the image half of a key. */
export async function imageDigest(bytes: Uint8Array): Promise<string> {
  return hex(await crypto.subtle.digest('SHA-256', bytes));
}

const versions = new WeakMap<ModelManifest, Promise<string>>();

/**
 * What the model's answers depend on, hashed: the weights (model.onnx's sha256, and every
 * stage's for a split model, since stages can be cut and uploaded again), the preprocessing and
 * the label set. Not the id: the same file under two names answers the same.
 */
export function modelVersion(manifest: ModelManifest): Promise<string> {
  let version = versions.get(manifest);
  if (!version) {
    const facts = {
      sha256: manifest.sha256,
      stages: manifest.stages?.map((s) => s.sha256) ?? [],
      preprocess: manifest.preprocess,
      labels: manifest.labels,
    };
    version = crypto.subtle.digest('SHA-256', new TextEncoder().encode(JSON.stringify(facts))).then(hex);
    versions.set(manifest, version);
  }
  return version;
}

function hex(buffer: ArrayBuffer): string {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
}
