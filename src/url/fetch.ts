/**
 * Fetches the image of a URL input for a caller, as an untrusted upload: host rules checked
 * before every hop, redirects followed by hand, one deadline for the whole exchange (body
 * included), and the byte limit enforced on what actually arrives.
 */
import { ApiError, badGateway, badRequest, gatewayTimeout, tooLarge } from '../errors';
import { refusal, type HostRules } from './hosts';

export interface UrlFetchOptions {
  rules: HostRules;
  /** For the whole fetch: every hop, and streaming the body. */
  timeoutMs: number;
  /** Most bytes of body accepted (MAX_BODY_BYTES, as for uploads). */
  maxBytes: number;
  /** Redirects followed before giving up (502). */
  maxRedirects?: number;
  /** The fetch to use (tests). */
  fetcher?: typeof fetch;
}

export interface Fetched {
  bytes: Uint8Array;
  /** Where the bytes finally came from, after redirects. */
  url: URL;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const ACCEPT = 'image/jpeg, image/png, image/webp, image/gif, */*;q=0.1';

/** Parses and checks a caller's URL: a 400 naming the host (never the query) when refused. */
export function parseImageUrl(raw: string, rules: HostRules): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badRequest('"url" is not an absolute URL (http or https)');
  }
  const reason = refusal(url, rules);
  if (reason) throw badRequest(`refused URL to ${describeHost(url)}: ${reason}`);
  return url;
}

export async function fetchImage(start: URL, options: UrlFetchOptions): Promise<Fetched> {
  const { rules, timeoutMs, maxBytes, maxRedirects = 3, fetcher = fetch } = options;
  const controller = new AbortController();
  let url = start;
  // One timer for everything: racing each await against it means a server that stalls mid-body
  // cannot hold the request past the deadline even if the runtime ignores the abort.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(gatewayTimeout(`${describeHost(url)} did not send the image within ${timeoutMs} ms (URL_TIMEOUT_MS)`));
    }, timeoutMs);
  });
  const inTime = <T>(work: Promise<T>) => Promise.race([work, expired]);
  try {
    for (let hop = 0; ; hop++) {
      const res = await inTime(request(url, controller.signal, fetcher));
      if (REDIRECTS.has(res.status)) {
        void res.body?.cancel().catch(() => {});
        const next = redirectTarget(url, res, hop, maxRedirects, start);
        const reason = refusal(next, rules);
        if (reason) throw badRequest(`${describeHost(url)} redirected to refused ${describeHost(next)}: ${reason}`);
        url = next;
        continue;
      }
      if (res.status < 200 || res.status > 299) {
        void res.body?.cancel().catch(() => {});
        throw badGateway(`${describeHost(url)} answered ${res.status}${res.statusText ? ` ${res.statusText.slice(0, 40)}` : ''}`);
      }
      return { bytes: await readLimited(res, url, maxBytes, inTime), url };
    }
  } finally {
    clearTimeout(timer);
    // Whatever is still open (a refused body, a stalled stream) stops now.
    controller.abort();
  }
}

async function request(url: URL, signal: AbortSignal, fetcher: typeof fetch): Promise<Response> {
  try {
    return await fetcher(url.href, {
      method: 'GET',
      redirect: 'manual',
      signal,
      // The formats we decode: a CDN that negotiates on Accept must not pick AVIF or JPEG XL.
      headers: { Accept: ACCEPT, 'User-Agent': 'edge-resnet (image URL input)' },
    });
  } catch (err) {
    // After the deadline, the abort surfaces here too; the race has already answered 504.
    throw badGateway(`could not fetch from ${describeHost(url)}: connection failed`, err);
  }
}

function redirectTarget(url: URL, res: Response, hop: number, maxRedirects: number, start: URL): URL {
  if (hop >= maxRedirects) {
    throw badGateway(`too many redirects from ${describeHost(start)} (more than ${maxRedirects})`);
  }
  const location = res.headers.get('Location');
  if (!location) throw badGateway(`${describeHost(url)} answered ${res.status} with no Location`);
  try {
    return new URL(location, url);
  } catch {
    throw badGateway(`${describeHost(url)} redirected to an invalid URL`);
  }
}

/** The body, refused as soon as it is known to pass `maxBytes`: announced, or arrived. */
async function readLimited(
  res: Response,
  url: URL,
  maxBytes: number,
  inTime: <T>(work: Promise<T>) => Promise<T>,
): Promise<Uint8Array> {
  const over = () => tooLarge(`the image at ${describeHost(url)} is over ${maxBytes} bytes (MAX_BODY_BYTES)`);
  // An announced length can only fail early: a body is still counted as it arrives, since
  // the header may lie (or describe compressed bytes the runtime inflates).
  const announced = Number(res.headers.get('Content-Length') ?? NaN);
  if (announced > maxBytes) {
    void res.body?.cancel().catch(() => {});
    throw over();
  }
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  // Memory follows the bytes that arrived, never the bytes promised: a server announcing 20 MiB
  // and stalling must not get 20 MiB allocated per request. The buffer doubles as data comes,
  // and stops at an honest announced length, so the last growth lands on the exact size.
  const honest = Number.isSafeInteger(announced) && announced >= 0 ? announced : undefined;
  let buffer = new Uint8Array(Math.min(64 * 1024, honest ?? Infinity));
  let total = 0;
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await inTime(reader.read());
      } catch (err) {
        if (err instanceof ApiError) throw err;
        throw badGateway(`${describeHost(url)} broke off while sending the image`, err);
      }
      if (chunk.done) break;
      const end = total + chunk.value.byteLength;
      if (end > maxBytes) throw over();
      if (end > buffer.byteLength) {
        let size = Math.max(end, buffer.byteLength * 2);
        if (honest !== undefined && end <= honest) size = Math.min(size, honest);
        const grown = new Uint8Array(Math.min(maxBytes, size));
        grown.set(buffer.subarray(0, total));
        buffer = grown;
      }
      buffer.set(chunk.value, total);
      total = end;
    }
  } catch (err) {
    void reader.cancel().catch(() => {});
    throw err;
  }
  return buffer.subarray(0, total);
}

/** A URL's host (and port) for messages: never its path or query, which may carry secrets. */
export function describeHost(url: URL): string {
  return url.host || '(no host)';
}
