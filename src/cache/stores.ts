/**
 * Where cached results live. A store only moves bytes under a key; what the bytes mean, and
 * the rule that a failing store never fails a request, are ResultCache's (results.ts).
 */

export interface ResultStore {
  /** For logs: `cache-api`, `kv`. */
  readonly name: string;
  /** The bytes stored under `key`, or null when there are none (or they have expired). */
  get(key: string): Promise<ArrayBuffer | null>;
  put(key: string, bytes: ArrayBuffer, ttlSeconds: number): Promise<void>;
}

/**
 * Cloudflare's Cache API (`caches.default`): per data centre, free, and honoured under
 * `wrangler dev` and on custom domains; on `*.workers.dev` every put and match does nothing
 * (see resultCacheFor). Keys become synthetic GET URLs on a host nobody serves, so an entry
 * can never be confused with a cached page.
 */
export function cacheApiStore(cache: Cache): ResultStore {
  const url = (key: string) => `https://edge-resnet-results.invalid/${key}`;
  return {
    name: 'cache-api',
    async get(key) {
      const res = await cache.match(url(key));
      return res ? res.arrayBuffer() : null;
    },
    async put(key, bytes, ttlSeconds) {
      await cache.put(
        url(key),
        new Response(bytes, { headers: { 'Content-Type': 'application/octet-stream', 'Cache-Control': `public, max-age=${ttlSeconds}` } }),
      );
    },
  };
}

/** KV refuses expirations sooner than 60 s from now. */
const KV_MIN_TTL = 60;

/**
 * Workers KV: global and eventually consistent, works on `*.workers.dev`, but every write is
 * billed (more per million than a ResNet-18 inference's CPU), so it is the fallback where the
 * Cache API does nothing. A TTL under KV's 60 s minimum is kept by the expiry in the entry's
 * metadata, checked on read.
 */
export function kvStore(kv: KVNamespace): ResultStore {
  return {
    name: 'kv',
    async get(key) {
      const { value, metadata } = await kv.getWithMetadata<{ expires?: number }>(key, 'arrayBuffer');
      if (value === null) return null;
      if (typeof metadata?.expires === 'number' && metadata.expires < Date.now()) return null;
      return value;
    },
    async put(key, bytes, ttlSeconds) {
      await kv.put(key, bytes, {
        expirationTtl: Math.max(KV_MIN_TTL, ttlSeconds),
        metadata: { expires: Date.now() + ttlSeconds * 1000 },
      });
    },
  };
}
