/**
 * The URL fetcher (src/url/fetch.ts) against a scripted `fetch`: what the workerd tests
 * (test/worker/url.test.ts) cannot stage with one server on 127.0.0.1, i.e. public hosts
 * redirecting to refused ones under the default rules, and what exactly goes on the wire.
 */
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors';
import { fetchImage, parseImageUrl, type UrlFetchOptions } from '../../src/url/fetch';
import type { HostRules } from '../../src/url/hosts';

const RULES: HostRules = { allowed: [], self: ['edge.test'] };
const JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);

/** A fetch that answers from a table of URL -> response, and records what it was asked. */
function scripted(routes: Record<string, () => Response>) {
  const seen: Array<{ url: string; init: RequestInit | undefined }> = [];
  const fetcher = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    seen.push({ url, init });
    const route = routes[url];
    if (!route) throw new TypeError('fetch failed');
    return route();
  }) as typeof fetch;
  return { fetcher, seen };
}

const redirect = (to: string, status = 302) => () => new Response(null, { status, headers: { Location: to } });

async function failure(work: Promise<unknown>): Promise<ApiError> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  return err as ApiError;
}

function options(fetcher: typeof fetch, extra: Partial<UrlFetchOptions> = {}): UrlFetchOptions {
  return { rules: RULES, timeoutMs: 2000, maxBytes: 1000, fetcher, ...extra };
}

describe('fetchImage', () => {
  it('fetches with redirect: manual, asks for the formats it reads, and returns the bytes', async () => {
    const { fetcher, seen } = scripted({ 'https://img.example/cat.jpg': () => new Response(JPEG) });
    const got = await fetchImage(new URL('https://img.example/cat.jpg'), options(fetcher));
    expect(got.bytes).toEqual(JPEG);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.init).toMatchObject({ method: 'GET', redirect: 'manual' });
    expect(new Headers(seen[0]!.init!.headers).get('Accept')).toBe('image/jpeg, image/png, image/webp, image/gif, */*;q=0.1');
  });

  it('follows up to 3 redirects by hand, resolving relative Locations', async () => {
    const { fetcher, seen } = scripted({
      'https://a.example/1': redirect('/2', 301),
      'https://a.example/2': redirect('https://b.example/3', 303),
      'https://b.example/3': redirect('4?x=1', 308),
      'https://b.example/4?x=1': () => new Response(JPEG),
    });
    const got = await fetchImage(new URL('https://a.example/1'), options(fetcher));
    expect(got.bytes).toEqual(JPEG);
    expect(got.url.href).toBe('https://b.example/4?x=1');
    expect(seen.map((s) => s.url)).toEqual(['https://a.example/1', 'https://a.example/2', 'https://b.example/3', 'https://b.example/4?x=1']);
  });

  it('gives up after the 3rd redirect with a 502 naming the starting host', async () => {
    const { fetcher, seen } = scripted({
      'https://a.example/1': redirect('/2'),
      'https://a.example/2': redirect('/3'),
      'https://a.example/3': redirect('/4'),
      'https://a.example/4': redirect('/5'),
      'https://a.example/5': () => new Response(JPEG),
    });
    const err = await failure(fetchImage(new URL('https://a.example/1'), options(fetcher)));
    expect(err.toJSON()).toMatchObject({ code: 502, type: 'bad_gateway' });
    expect(err.message).toMatch(/too many redirects from a\.example/);
    expect(seen).toHaveLength(4);
  });

  it('checks the default host rules again at every hop, before fetching it', async () => {
    const refusedTargets = [
      'http://127.0.0.1/admin',
      'http://2130706433/',
      'http://[::ffff:127.0.0.1]/',
      'http://[::ffff:7f00:1]/',
      'http://169.254.169.254/latest/meta-data/',
      'http://10.0.0.8/',
      'http://[fd00::1]/',
      'http://localhost:8080/',
      'https://edge.test/predict',
      'file:///etc/passwd',
      'https://user:pw@img.example/x.jpg',
    ];
    for (const target of refusedTargets) {
      const { fetcher, seen } = scripted({ 'https://img.example/x.jpg': redirect(target) });
      const err = await failure(fetchImage(new URL('https://img.example/x.jpg'), options(fetcher)));
      expect(err.toJSON(), target).toMatchObject({ code: 400, type: 'bad_request' });
      expect(err.message).toMatch(/^img\.example redirected to refused /);
      // Only the first hop went on the wire.
      expect(seen.map((s) => s.url)).toEqual(['https://img.example/x.jpg']);
    }
  });

  it('answers 502 for an upstream error, a failed connection, a redirect without Location, and a bad Location', async () => {
    const { fetcher } = scripted({
      'https://a.example/404': () => new Response('gone', { status: 404, statusText: 'Not Found' }),
      'https://a.example/500': () => new Response('oops', { status: 500 }),
      'https://a.example/304': () => new Response(null, { status: 304 }),
      'https://a.example/noloc': () => new Response(null, { status: 302 }),
      'https://a.example/badloc': redirect('http://[::1'),
    });
    const cases: Array<[string, RegExp]> = [
      ['https://a.example/404', /^a\.example answered 404 Not Found$/],
      ['https://a.example/500', /^a\.example answered 500/],
      ['https://a.example/304', /^a\.example answered 304/],
      ['https://a.example/noloc', /^a\.example answered 302 with no Location$/],
      ['https://a.example/badloc', /^a\.example redirected to an invalid URL$/],
      ['https://down.example/x', /^could not fetch from down\.example: connection failed$/],
    ];
    for (const [url, message] of cases) {
      const err = await failure(fetchImage(new URL(url), options(fetcher)));
      expect(err.toJSON(), url).toMatchObject({ code: 502, type: 'bad_gateway' });
      expect(err.message).toMatch(message);
    }
  });

  it('refuses a body over the limit: announced, streamed, or announced falsely small', async () => {
    const big = new Uint8Array(1001);
    const stream = (chunks: number[]) =>
      new ReadableStream<Uint8Array>({
        start(c) {
          for (const n of chunks) c.enqueue(new Uint8Array(n));
          c.close();
        },
      });
    const { fetcher } = scripted({
      'https://a.example/announced': () => new Response(big, { headers: { 'Content-Length': '1001' } }),
      'https://a.example/streamed': () => new Response(stream([400, 400, 400])),
      'https://a.example/liar': () => new Response(stream([600, 600]), { headers: { 'Content-Length': '10' } }),
      'https://a.example/exact': () => new Response(stream([500, 500])),
      'https://a.example/odd-length': () => new Response(stream([3, 4]), { headers: { 'Content-Length': '1.5' } }),
    });
    for (const path of ['announced', 'streamed', 'liar']) {
      const err = await failure(fetchImage(new URL(`https://a.example/${path}`), options(fetcher)));
      expect(err.toJSON(), path).toMatchObject({ code: 413, type: 'payload_too_large' });
      expect(err.message).toBe('the image at a.example is over 1000 bytes (MAX_BODY_BYTES)');
    }
    expect((await fetchImage(new URL('https://a.example/exact'), options(fetcher))).bytes.byteLength).toBe(1000);
    expect((await fetchImage(new URL('https://a.example/odd-length'), options(fetcher))).bytes.byteLength).toBe(7);
  });

  it('returns exactly the bytes sent, whatever the chunking and whatever Content-Length says', async () => {
    const data = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251);
    const chunked = (sizes: number[]) =>
      new ReadableStream<Uint8Array>({
        start(c) {
          let at = 0;
          for (const n of sizes) {
            c.enqueue(data.slice(at, at + n));
            at += n;
          }
          c.close();
        },
      });
    const sizes = [1, 65535, 70000, 3, 64461];
    const { fetcher } = scripted({
      'https://a.example/none': () => new Response(chunked(sizes)),
      'https://a.example/honest': () => new Response(chunked(sizes), { headers: { 'Content-Length': '200000' } }),
      'https://a.example/low': () => new Response(chunked(sizes), { headers: { 'Content-Length': '100' } }),
    });
    for (const path of ['none', 'honest', 'low']) {
      const got = await fetchImage(new URL(`https://a.example/${path}`), options(fetcher, { maxBytes: 200_000 }));
      expect(got.bytes.byteLength, path).toBe(200_000);
      expect(Buffer.from(got.bytes).equals(Buffer.from(data)), path).toBe(true);
      // An honest length is held in a buffer of exactly that size.
      if (path === 'honest') expect(got.bytes.buffer.byteLength).toBe(200_000);
    }
  });

  it('allocates for the bytes that arrived, not for the bytes announced', async () => {
    const { fetcher } = scripted({
      'https://a.example/promise': () => new Response(new Uint8Array(10), { headers: { 'Content-Length': String(10 << 20) } }),
    });
    // A Response built from 10 bytes with a 10 MiB Content-Length: the header is what lies.
    const got = await fetchImage(new URL('https://a.example/promise'), options(fetcher, { maxBytes: 20 << 20 }));
    expect(got.bytes.byteLength).toBe(10);
    expect(got.bytes.buffer.byteLength).toBeLessThanOrEqual(64 * 1024);
  });

  it('times out the whole exchange, body included, with a 504', async () => {
    const stalled = () =>
      new Response(
        new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(JPEG);
            // ...and nothing more, ever.
          },
        }),
      );
    const never = () => new Promise<Response>(() => {});
    const { fetcher } = scripted({ 'https://a.example/stalled': stalled });
    const hanging = (async () => never()) as unknown as typeof fetch;
    for (const [url, f] of [
      ['https://a.example/stalled', fetcher],
      ['https://b.example:8443/hang?token=SECRET', hanging],
    ] as const) {
      const started = Date.now();
      const err = await failure(fetchImage(new URL(url), options(f, { timeoutMs: 200 })));
      expect(Date.now() - started).toBeLessThan(1500);
      expect(err.toJSON()).toMatchObject({ code: 504, type: 'gateway_timeout' });
      expect(err.message).toMatch(/within 200 ms \(URL_TIMEOUT_MS\)$/);
      expect(err.message).not.toMatch(/SECRET|hang|stalled/);
    }
  });
});

describe('parseImageUrl', () => {
  it('refuses what is no absolute URL, and names only the host of a refused one', () => {
    for (const raw of ['', 'cat.jpg', '/images/cat.jpg', 'http://', 'https://exa mple.com/']) {
      expect(() => parseImageUrl(raw, RULES), raw).toThrow(/is not an absolute URL/);
    }
    const err = (() => {
      try {
        parseImageUrl('http://169.254.169.254/latest?token=SECRET', RULES);
      } catch (e) {
        return e as ApiError;
      }
    })();
    expect(err?.toJSON()).toMatchObject({ code: 400, type: 'bad_request' });
    expect(err?.message).toBe('refused URL to 169.254.169.254: a link-local address');
    expect(parseImageUrl('HTTPS://Img.Example/a.jpg', RULES).href).toBe('https://img.example/a.jpg');
  });
});
