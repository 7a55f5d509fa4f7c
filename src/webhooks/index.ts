/**
 * Signed webhooks: where a callback may point, how a body is signed, and one delivery attempt
 * classified as delivered, transient (worth a retry) or permanent.
 *
 * Signature: `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under
 * WEBHOOK_SECRET, so that a receiver can refuse old deliveries (replay window) as well as
 * forged ones. `Idempotency-Key` carries the job id: queues deliver at least once, so the
 * same job's webhook may arrive more than once and receivers dedupe on it.
 */
import { refusal, type HostRules } from '../url/hosts';

export interface CallbackRules {
  /** CALLBACK_HOSTS: when `allowed` is non-empty, the only hosts called back. */
  callbackRules: HostRules;
  allowHttpCallbacks: boolean;
}

/** Longest callback URL accepted: it travels in every queue message of its job. */
export const MAX_CALLBACK_LENGTH = 2048;

/**
 * Why `raw` may not be called back, or undefined when it may. The URL input's host rules
 * (src/url/hosts.ts) with CALLBACK_HOSTS as the allow list, and https only unless
 * ALLOW_HTTP_CALLBACKS.
 */
export function callbackRefusal(raw: string, rules: CallbackRules): string | undefined {
  if (raw.length > MAX_CALLBACK_LENGTH) return `the callback URL is over ${MAX_CALLBACK_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'the callback is not an absolute URL';
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && rules.allowHttpCallbacks)) {
    return rules.allowHttpCallbacks ? 'the callback must be an http(s) URL' : 'the callback must be an https URL (ALLOW_HTTP_CALLBACKS is off)';
  }
  const why = refusal(url, rules.callbackRules);
  if (why === undefined) return undefined;
  return why === 'the host is not in URL_HOSTS' ? 'the host is not in CALLBACK_HOSTS' : `the callback's host is refused: ${why}`;
}

/** Hex HMAC-SHA256 of `<t>.<body>` under `secret`: the `v1` of X-Signature. */
export async function signature(secret: string, t: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`${t}.${body}`));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export type Delivery = { ok: true; status: number } | { ok: false; transient: boolean; reason: string };

export interface DeliveryOptions {
  secret: string;
  timeoutMs: number;
  /** The job id, sent as Idempotency-Key. */
  idempotencyKey: string;
}

/**
 * POSTs `body` (JSON text) to `url` once. Redirects are not followed: a 3xx is a permanent
 * failure, since following one would let a receiver send the signed result elsewhere.
 */
export async function deliver(url: string, body: string, options: DeliveryOptions): Promise<Delivery> {
  const t = Math.floor(Date.now() / 1000);
  const headers = {
    'Content-Type': 'application/json',
    'User-Agent': 'edge-resnet-webhooks/1',
    'Idempotency-Key': options.idempotencyKey,
    'X-Signature': `t=${t},v1=${await signature(options.secret, t, body)}`,
  };
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(options.timeoutMs) });
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    return { ok: false, transient: true, reason: timedOut ? `callback timed out after ${options.timeoutMs} ms` : 'callback unreachable (network error)' };
  }
  // The receiver's answer is not ours to keep; drain it so the connection can be reused.
  await res.body?.cancel().catch(() => {});
  const host = new URL(url).host;
  if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
  if (res.status >= 300 && res.status < 400) return { ok: false, transient: false, reason: `callback ${host} answered ${res.status} (redirects are not followed)` };
  const transient = res.status === 408 || res.status === 429 || res.status >= 500;
  return { ok: false, transient, reason: `callback ${host} answered ${res.status}` };
}
