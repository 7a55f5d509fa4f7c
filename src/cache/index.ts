/**
 * The result cache (issue #8 part 4) and how a request picks its backing. The pipeline takes
 * a ResultCache as an option and never sees bindings; routes (and the RPC entrypoint) make
 * one per request with `resultCacheFor`.
 */
import { getConfig } from '../config';
import { ResultCache } from './results';
import { cacheApiStore, kvStore, type ResultStore } from './stores';

export { imageDigest, modelVersion, PIPELINE_VERSION, ResultCache, type CacheStatus } from './results';
export { cacheApiStore, kvStore, type ResultStore } from './stores';

/**
 * The cache for one request, or undefined when there is none (X-Cache: BYPASS): when
 * CACHE_TTL_SECONDS is 0, or on `*.workers.dev` without a `RESULTS` KV namespace.
 *
 * `host`: the name the request came in on. The Cache API does nothing on `*.workers.dev`,
 * so there KV (`RESULTS`, when bound) is the cache; on any other host (custom domains,
 * `wrangler dev`) the Cache API is, and KV is not written (each KV write is billed). Without a
 * host (an RPC call: the name the caller was reached on is unknown) both are used, the Cache
 * API first.
 */
export function resultCacheFor(env: Env, waitUntil: (promise: Promise<unknown>) => void, host: string | undefined): ResultCache | undefined {
  const ttlSeconds = getConfig(env).cacheTtlSeconds;
  if (ttlSeconds === 0) return undefined;
  const kv = resultsNamespace(env);
  const onWorkersDev = host !== undefined && /(^|\.)workers\.dev$/i.test(host.replace(/:\d+$/, ''));
  const stores: ResultStore[] = [];
  if (!onWorkersDev) stores.push(cacheApiStore(caches.default));
  if (kv && (onWorkersDev || host === undefined)) stores.push(kvStore(kv));
  return stores.length > 0 ? new ResultCache({ stores, ttlSeconds, waitUntil }) : undefined;
}

/** The optional `RESULTS` binding: a deployment may leave it out of wrangler.toml. */
function resultsNamespace(env: Env): KVNamespace | undefined {
  const value: unknown = (env as unknown as Record<string, unknown>).RESULTS;
  return typeof value === 'object' && value !== null && 'getWithMetadata' in value ? (value as KVNamespace) : undefined;
}
