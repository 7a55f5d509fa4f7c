// @ts-check
/**
 * The page's side of the API (README "API"): same-origin requests, the API key when the
 * deployment has one, and the answer headers that carry timings and the weights notice.
 */

/** @typedef {import('../src/answers/types.ts').PredictBody} PredictBody */
/** @typedef {import('../src/answers/types.ts').ModerateBody} ModerateBody */
/**
 * One entry of `GET /models` (src/routes/models.ts): available models have their summary,
 * unavailable ones (a broken manifest) only an error.
 * @typedef {{ id: string, available: boolean, precision?: string, weights?: 'real' | 'synthetic',
 *   stages?: number, loaded?: false | object, error?: string }} ModelSummary
 */
/** @typedef {{ default: string, models: ModelSummary[] }} ModelList */
/**
 * What the headers of an answer add to its body.
 * @typedef {{ serverTiming: Record<string, number>, cache: string | null, weights: string | null,
 *   warning: string | null, clientMs: number }} AnswerMeta
 */

const KEY_STORAGE = 'edge-resnet.api-key';

/** The key for this tab, if one was entered: sessionStorage dies with the tab, so it never lingers. */
export function storedKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    // Storage can be blocked (privacy settings): the key then lives only in the field.
    return '';
  }
}

/** @param {string} key */
export function storeKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // see storedKey
  }
}

/** An error answer of the API: `{ code, type, message }` (src/errors.ts), or what stood in for it. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} type
   * @param {string} message
   */
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

/**
 * A request with the key (when there is one); an error answer becomes an ApiError carrying the
 * API's own message, and a network failure one with status 0.
 * @param {string} path
 * @param {string} key
 * @param {RequestInit} [init]
 * @returns {Promise<{ body: unknown, res: Response, clientMs: number }>}
 */
async function request(path, key, init = {}) {
  const headers = new Headers(init.headers);
  if (key) headers.set('Authorization', `Bearer ${key}`);
  const started = performance.now();
  let res;
  try {
    res = await fetch(path, { ...init, headers });
  } catch (err) {
    throw new ApiError(0, 'network', `the request did not reach the server (${err instanceof Error ? err.message : String(err)})`);
  }
  const text = await res.text();
  const clientMs = performance.now() - started;
  /** @type {unknown} */
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const e = /** @type {{ type?: unknown, message?: unknown }} */ (body ?? {});
    const message = typeof e.message === 'string' ? e.message : text.slice(0, 200) || res.statusText;
    throw new ApiError(res.status, typeof e.type === 'string' ? e.type : 'http', message);
  }
  if (body === undefined) throw new ApiError(res.status, 'bad_answer', 'the answer was not JSON');
  return { body, res, clientMs };
}

/**
 * `Server-Timing: cache;dur=0.1;desc="MISS", model;dur=0, ...` as milliseconds by name.
 * @param {string | null} header
 */
export function parseServerTiming(header) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const part of (header ?? '').split(',')) {
    const [name, ...params] = part.trim().split(';');
    const dur = params.map((p) => /^\s*dur=([0-9.eE+-]+)\s*$/.exec(p)?.[1]).find((d) => d !== undefined);
    if (name && dur !== undefined && Number.isFinite(Number(dur))) out[name] = Number(dur);
  }
  return out;
}

/**
 * @param {Response} res
 * @param {number} clientMs
 * @returns {AnswerMeta}
 */
function metaOf(res, clientMs) {
  return {
    serverTiming: parseServerTiming(res.headers.get('Server-Timing')),
    cache: res.headers.get('X-Cache'),
    weights: res.headers.get('X-Model-Weights'),
    warning: res.headers.get('Warning'),
    clientMs,
  };
}

/** @param {string} key @returns {Promise<ModelList>} */
export async function listModels(key) {
  return /** @type {ModelList} */ ((await request('/models', key)).body);
}

/** @param {string} key @returns {Promise<string[]>} */
export async function listPolicies(key) {
  return /** @type {{ policies: string[] }} */ ((await request('/policies', key)).body).policies;
}

/** The image as the multipart field `data`, as the API's own examples send it. @param {Blob} image */
function form(image) {
  const body = new FormData();
  body.append('data', image, image instanceof File ? image.name : 'image');
  return body;
}

/**
 * `POST /predict[/:model]?topk=5[&concepts=...]`.
 * @param {Blob} image
 * @param {{ model: string, concepts: string[], key: string }} options
 * @returns {Promise<{ body: PredictBody, meta: AnswerMeta }>}
 */
export async function predict(image, { model, concepts, key }) {
  const query = new URLSearchParams({ topk: '5' });
  if (concepts.length > 0) query.set('concepts', concepts.join(','));
  const path = `/predict${model ? `/${encodeURIComponent(model)}` : ''}?${query}`;
  const { body, res, clientMs } = await request(path, key, { method: 'POST', body: form(image) });
  return { body: /** @type {PredictBody} */ (body), meta: metaOf(res, clientMs) };
}

/**
 * `POST /moderate/:policy`.
 * @param {Blob} image
 * @param {{ policy: string, key: string }} options
 * @returns {Promise<{ body: ModerateBody, meta: AnswerMeta }>}
 */
export async function moderate(image, { policy, key }) {
  const { body, res, clientMs } = await request(`/moderate/${encodeURIComponent(policy)}`, key, { method: 'POST', body: form(image) });
  return { body: /** @type {ModerateBody} */ (body), meta: metaOf(res, clientMs) };
}
