/**
 * What a consumer Worker needs to call the `Classifier` entrypoint over a service binding
 * (package export `edge-resnet/rpc`). Types only, importing nothing of this Worker but the
 * import-free answer bodies, so a consumer type-checks without our sources' Env or modules:
 *
 *   import type { ClassifierService } from 'edge-resnet/rpc';
 *   interface Env { CLASSIFIER: ClassifierService }
 *   const result = await env.CLASSIFIER.moderate(bytes, 'weapons');
 *   if (!result.ok) ... result.error.type ...
 */
import type { ErrorType, ModerateBody, PredictBody } from '../answers/types';

export type * from '../answers/types';

/**
 * An image: its bytes, a stream of them (read up to MAX_BODY_BYTES as it arrives), or the
 * address of one for the Worker to fetch (http/https, the same host rules and limits as a
 * `{ "url" }` body over HTTP).
 */
export type ImageInput = Uint8Array | ArrayBuffer | ReadableStream<Uint8Array> | { url: string };

export interface ClassifyOptions {
  /** Model id, e.g. `resnet50v1`; DEFAULT_MODEL when absent. */
  model?: string;
  /** Classes in `predictions`, 1..1000; 5 when absent. */
  topk?: number;
  /** Concepts to score (WordNet lemmas or noun synset ids), as `?concepts=` over HTTP; at most 50. */
  concepts?: string[];
}

export interface PolicyRule {
  concept: string;
  threshold: number;
  action: 'block' | 'flag';
}

/** A stored policy's name (`policies/<name>.json` in the models bucket) or an inline policy. */
export type PolicyInput = string | { name: string; rules: PolicyRule[] };

export interface RpcError {
  /** The HTTP status the same failure gets over HTTP (400, 413, 503, ...). */
  code: number;
  type: ErrorType;
  message: string;
  /** Seconds to wait before retrying, on `overloaded` (HTTP's Retry-After). */
  retryAfter?: number;
}

/**
 * Errors thrown across RPC keep only their message, so every failure the caller can act on
 * comes back as a value instead.
 */
export type RpcResult<T> = ({ ok: true; cache: CacheStatus } & T) | { ok: false; error: RpcError };

/**
 * Whether the answer came from the result cache (HTTP's X-Cache header): HIT, MISS, or
 * BYPASS when there is no cache (CACHE_TTL_SECONDS is 0).
 */
export type CacheStatus = 'HIT' | 'MISS' | 'BYPASS';

export type ClassifyResult = RpcResult<PredictBody>;
export type ModerateResult = RpcResult<ModerateBody>;

/** The methods of the `Classifier` entrypoint (src/rpc/index.ts implements this). */
export interface ClassifierRpc {
  /** As `POST /predict/:model` (native answer). */
  classify(image: ImageInput, options?: ClassifyOptions): Promise<ClassifyResult>;
  /** As `POST /moderate`: `policy` absent means DEFAULT_POLICY (an error when that is unset). */
  moderate(image: ImageInput, policy?: PolicyInput): Promise<ModerateResult>;
}

/**
 * The type of a service binding to the entrypoint (wrangler: `[[services]] binding = "CLASSIFIER"`,
 * `service = "edge-resnet"`, `entrypoint = "Classifier"`). Needs @cloudflare/workers-types.
 */
export type ClassifierService = Service<ClassifierRpc & Rpc.WorkerEntrypointBranded>;
