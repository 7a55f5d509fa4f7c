/**
 * Limits and switches, read from wrangler.toml vars and secrets. Parsed once per `env`
 * object (the runtime hands every request of an isolate the same one).
 */
export interface Config {
  defaultModel: string;
  /** DEFAULT_POLICY: the named policy `POST /moderate` applies; undefined when unset. */
  defaultPolicy: string | undefined;
  maxBodyBytes: number;
  maxPixels: number;
  /** Memory the JPEG/PNG decoder may allocate for one image, in MB (413 above it). */
  maxDecodeMB: number;
  maxImages: number;
  /** Most sessions kept alive in one isolate; the least recently used idle one is released. */
  maxLoadedModels: number;
  /** Requests in flight per isolate (admission control, src/admission). */
  maxInFlight: number;
  /** Model heap + reserved decode memory must stay under this, in MiB. */
  memoryBudgetMB: number;
  /** Longest wait for a request slot or decode memory before a 503 overloaded. */
  admissionWaitMs: number;
  /** Longest a request waits in all for a slot, memory and its model's session. */
  requestTimeoutMs: number;
  /** Longest one call to a split model's stage Worker may take. */
  stageTimeoutMs: number;
  corsOrigins: string[];
  /** Longest a URL input may take to fetch, redirects and body included (504 past it). */
  urlTimeoutMs: number;
  /** URL_HOSTS: when non-empty, the only hosts URL input may fetch from (as configured). */
  urlHosts: string[];
  /** CACHE_TTL_SECONDS: how long an image's result is cached (src/cache); 0 turns the cache off. */
  cacheTtlSeconds: number;
  /**
   * MODEL_WORKERS: models served by a Worker of their own (model id -> service binding name),
   * so that each keeps its model warm (src/middleware/route-model). Empty: all served here.
   */
  modelWorkers: Map<string, string>;
  /** When undefined, requests need no key. */
  apiKey: string | undefined;
}

const cache = new WeakMap<object, Config>();

export function getConfig(env: Env): Config {
  let config = cache.get(env);
  if (!config) {
    config = parseConfig(env);
    cache.set(env, config);
  }
  return config;
}

function parseConfig(env: Env): Config {
  return {
    defaultModel: env.DEFAULT_MODEL || 'resnet18v1',
    defaultPolicy: env.DEFAULT_POLICY || undefined,
    maxBodyBytes: positiveInt('MAX_BODY_BYTES', env.MAX_BODY_BYTES, 20 * 1024 * 1024),
    maxPixels: positiveInt('MAX_PIXELS', env.MAX_PIXELS, 16_000_000),
    maxDecodeMB: positiveInt('MAX_DECODE_MB', env.MAX_DECODE_MB, 32),
    maxImages: positiveInt('MAX_IMAGES', env.MAX_IMAGES, 8),
    maxLoadedModels: positiveInt('MAX_LOADED_MODELS', env.MAX_LOADED_MODELS, 1),
    maxInFlight: positiveInt('MAX_IN_FLIGHT', env.MAX_IN_FLIGHT, 8),
    memoryBudgetMB: positiveInt('MEMORY_BUDGET_MB', env.MEMORY_BUDGET_MB, 116),
    admissionWaitMs: positiveInt('ADMISSION_WAIT_MS', env.ADMISSION_WAIT_MS, 2000),
    requestTimeoutMs: positiveInt('REQUEST_TIMEOUT_MS', env.REQUEST_TIMEOUT_MS, 20_000),
    stageTimeoutMs: positiveInt('STAGE_TIMEOUT_MS', env.STAGE_TIMEOUT_MS, 10_000),
    corsOrigins: (env.CORS_ORIGINS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    urlTimeoutMs: positiveInt('URL_TIMEOUT_MS', env.URL_TIMEOUT_MS, 10_000),
    urlHosts: (env.URL_HOSTS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    cacheTtlSeconds: nonNegativeInt('CACHE_TTL_SECONDS', env.CACHE_TTL_SECONDS, 86_400),
    modelWorkers: parseModelWorkers(env.MODEL_WORKERS),
    apiKey: env.API_KEY || undefined,
  };
}

/**
 * "resnet34v1=MODEL_A, resnet50v1=MODEL_B": model id -> service binding name. A typo would
 * silently serve the model here (the very thrash this option avoids), so any malformed entry
 * throws, naming it.
 */
export function parseModelWorkers(raw: string | undefined): Map<string, string> {
  const workers = new Map<string, string>();
  for (const entry of (raw ?? '').split(',')) {
    if (entry.trim() === '') continue;
    const [id, binding, ...rest] = entry.split('=').map((s) => s.trim());
    const bad = (why: string) => new Error(`MODEL_WORKERS: "${entry.trim()}" ${why}; expected "<model id>=<service binding>, ..."`);
    if (binding === undefined || rest.length > 0) throw bad('is not one model=binding pair');
    if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(id!)) throw bad('does not start with a model id');
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(binding)) throw bad('does not end with a binding name');
    if (workers.has(id!)) throw bad(`names ${id} a second time`);
    workers.set(id!, binding);
  }
  return workers;
}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  // A misconfigured limit must fail loudly, not silently become "no limit".
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

/** As positiveInt, where 0 means "off". */
function nonNegativeInt(name: string, raw: string | undefined, fallback: number): number {
  return raw === '0' ? 0 : positiveInt(name, raw, fallback);
}
