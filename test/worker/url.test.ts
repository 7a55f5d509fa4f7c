/**
 * URL input (`{ "url": ... }` JSON bodies) through the Worker's fetch handler in workerd,
 * against a real HTTP server on 127.0.0.1 (test/url-server.ts, started by the global setup):
 * images, redirects, upstream errors, slow and huge bodies, non-images, and refused hosts.
 * The server is allowed through URL_HOSTS, as an operator would list an image host; the
 * refusals are tested without it.
 */
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { call, fixture, seedModel, type ErrorAnswer, type NativeAnswer } from './helpers';

const base = inject('urlServer');
const host = new URL(base).host;
const port = new URL(base).port;

/** Vars of these tests: the local server allowed, a short timeout. */
const VARS = { URL_HOSTS: '127.0.0.1', URL_TIMEOUT_MS: '3000' };

let cat: Uint8Array;

beforeAll(async () => {
  await seedModel('resnet18v1');
  cat = await fixture('test/fixtures/photos/chelsea.jpg');
});

function fromUrl(url: string, vars: Partial<Env> = VARS, path = '/predict', extra: Record<string, unknown> = {}): Promise<Response> {
  return call(
    path,
    { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ url, ...extra }) },
    vars,
  );
}

/** How often the server was asked for a path: proves a refused URL never went on the wire. */
async function hits(path: string): Promise<number> {
  const res = await fetch(`${base}/hits?path=${encodeURIComponent(path)}`);
  return ((await res.json()) as { count: number }).count;
}

const unique = (name: string) => `/never/${name}-${crypto.randomUUID()}`;

async function expectError(res: Response, code: number, type: string, message?: RegExp): Promise<ErrorAnswer> {
  const body = (await res.json()) as ErrorAnswer;
  expect({ status: res.status, body }).toMatchObject({ status: code, body: { code, type } });
  if (message) expect(body.message).toMatch(message);
  return body;
}

describe('URL input: images', () => {
  it('classifies the image at a URL exactly as the same bytes uploaded', async () => {
    const [byUrl, byUpload] = await Promise.all([
      fromUrl(`${base}/image/chelsea.jpg`),
      call('/predict', { method: 'POST', body: cat }),
    ]);
    expect(byUrl.status).toBe(200);
    const a = (await byUrl.json()) as NativeAnswer;
    const b = (await byUpload.json()) as NativeAnswer;
    expect(a.images).toHaveLength(1);
    expect(a.images[0]).toMatchObject({ width: 451, height: 300 });
    expect(a.images).toEqual(b.images);
  });

  it('works on every predict route, with a charset and with keys the route does not read (policy)', async () => {
    const png = await fromUrl(`${base}/image/camera.png`, VARS, '/predict/resnet18v1?topk=3');
    expect(png.status).toBe(200);
    const body = (await png.json()) as NativeAnswer;
    expect(body.images[0]!.predictions).toHaveLength(3);
    expect(body.images[0]).toMatchObject({ width: 512, height: 512 });

    const compat = await fromUrl(`${base}/image/chelsea.jpg`, VARS, '/resnet18v1/predict', { policy: { name: 'x', rules: [] } });
    expect(compat.status).toBe(200);
    const classes = (await compat.json()) as Array<{ class: string; probability: number }>;
    expect(classes).toHaveLength(5);
    expect(classes[0]!.class).toMatch(/^n\d{8} /);

    const charset = await call(
      '/predictions/resnet18v1',
      { method: 'POST', headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: JSON.stringify({ url: `${base}/image/chelsea.jpg` }) },
      VARS,
    );
    expect(charset.status).toBe(200);
    expect(Object.keys((await charset.json()) as object)).toHaveLength(5);
  });

  it('answers 415 for what is no image whatever its Content-Type, 422 for a truncated one', async () => {
    // Alone in its request, a fetched image's errors still name where it came from.
    const host = new RegExp(`^url \\(${new URL(base).host.replace(/[.]/g, '\\.')}\\): `);
    await expectError(await fromUrl(`${base}/text`), 415, 'unsupported_media_type', host);
    await expectError(await fromUrl(`${base}/empty`), 415, 'unsupported_media_type', host);
    await expectError(await fromUrl(`${base}/truncated`), 422, 'unprocessable_image', host);
  });
});

describe('URL input: /moderate', () => {
  // Threshold 0 fires whatever the probabilities: the decision shows the policy was applied.
  const policy = { name: 'url-test', rules: [{ concept: 'n04565375', threshold: 0, action: 'block' }] };

  it('moderates the image at a URL with the inline policy of the same JSON body', async () => {
    const res = await fromUrl(`${base}/image/chelsea.jpg`, VARS, '/moderate', { policy });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { policy: { name: string }; images: Array<{ width: number; height: number; decision: string; predictions: unknown[] }> };
    expect(body.policy.name).toBe('url-test');
    expect(body.images).toHaveLength(1);
    expect(body.images[0]).toMatchObject({ width: 451, height: 300, decision: 'block' });
    const uploaded = (await (await call('/predict', { method: 'POST', body: cat })).json()) as NativeAnswer;
    expect(body.images[0]!.predictions).toEqual(uploaded.images[0]!.predictions);
  });

  it('gives the URL errors on /moderate too', async () => {
    const path = unique('moderate');
    await expectError(await fromUrl(`http://localhost:${port}${path}`, { URL_TIMEOUT_MS: '3000' }, '/moderate', { policy }), 400, 'bad_request', /localhost/);
    expect(await hits(path)).toBe(0);
    await expectError(await fromUrl(`${base}/status/404`, VARS, '/moderate', { policy }), 502, 'bad_gateway');
    const noUrl = await call('/moderate', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ policy }) }, VARS);
    await expectError(noUrl, 400, 'bad_request', /^"url" is missing or not a string/);
  });
});

describe('URL input: redirects', () => {
  it('follows 3 redirects (relative and absolute Locations) and gives the same answer', async () => {
    const before = await hits('/redirect/1');
    const res = await fromUrl(`${base}/redirect/3`);
    expect(res.status).toBe(200);
    const direct = (await (await fromUrl(`${base}/image/chelsea.jpg`)).json()) as NativeAnswer;
    expect(((await res.json()) as NativeAnswer).images).toEqual(direct.images);
    expect(await hits('/redirect/1')).toBe(before + 1);
  });

  it('answers 502 at a 4th redirect, without following it', async () => {
    const [redirects, images] = [await hits('/redirect/1'), await hits('/image/chelsea.jpg')];
    const body = await expectError(await fromUrl(`${base}/redirect/4`), 502, 'bad_gateway');
    expect(body.message).toBe(`too many redirects from ${host} (more than 3)`);
    // The 4th redirect was received (from /redirect/1), its target never asked for.
    expect(await hits('/redirect/1')).toBe(redirects + 1);
    expect(await hits('/image/chelsea.jpg')).toBe(images);
  });

  it('answers 502 for a redirect with no Location', async () => {
    const body = await expectError(await fromUrl(`${base}/redirect-nowhere`), 502, 'bad_gateway', /no Location/);
    expect(body.message).toContain(host);
  });

  it('refuses with a 400, before fetching it, a redirect to a host the rules refuse', async () => {
    const targets: Array<[string, RegExp]> = [
      [`http://localhost:${port}`, /localhost:\d+: the host is not in URL_HOSTS/],
      [`http://[::ffff:127.0.0.1]:${port}`, /\[::ffff:7f00:1\]:\d+: the host is not in URL_HOSTS/],
      ['http://169.254.169.254', /169\.254\.169\.254: the host is not in URL_HOSTS/],
    ];
    for (const [origin, message] of targets) {
      const path = unique('redirect');
      const to = encodeURIComponent(`${origin}${path}`);
      const body = await expectError(await fromUrl(`${base}/redirect-to?to=${to}`), 400, 'bad_request', message);
      expect(body.message).toContain(`${host} redirected to refused`);
      expect(body.message).not.toContain('/never/');
      expect(await hits(path)).toBe(0);
    }
    await expectError(await fromUrl(`${base}/redirect-to?to=${encodeURIComponent('file:///etc/passwd')}`), 400, 'bad_request', /scheme file: is not http or https/);
  });
});

describe('URL input: upstream failures', () => {
  it('answers 502 naming the host for upstream 404 and 500, never echoing the path or query', async () => {
    for (const status of [404, 500, 503]) {
      const body = await expectError(await fromUrl(`${base}/status/${status}?token=SECRET`), 502, 'bad_gateway');
      expect(body.message).toBe(`${host} answered ${status} ${status === 404 ? 'Not Found' : status === 500 ? 'Internal Server Error' : 'Service Unavailable'}`);
      expect(body.message).not.toMatch(/SECRET|status\//);
    }
  });

  it('answers 502 when the connection fails', async () => {
    // Nothing listens on port 1.
    const body = await expectError(await fromUrl('http://127.0.0.1:1/cat.jpg'), 502, 'bad_gateway');
    expect(body.message).toBe('could not fetch from 127.0.0.1:1: connection failed');
  });

  it('answers 504 when the headers, or the rest of the body, come later than URL_TIMEOUT_MS', async () => {
    const vars = { ...VARS, URL_TIMEOUT_MS: '500' };
    for (const path of ['/slow-headers?ms=8000&token=SECRET', '/slow-body?ms=8000']) {
      const started = Date.now();
      const body = await expectError(await fromUrl(`${base}${path}`, vars), 504, 'gateway_timeout');
      const elapsed = Date.now() - started;
      expect(elapsed, path).toBeGreaterThanOrEqual(450);
      expect(elapsed, path).toBeLessThan(4000);
      expect(body.message).toBe(`${host} did not send the image within 500 ms (URL_TIMEOUT_MS)`);
    }
  });
});

describe('URL input: MAX_BODY_BYTES', () => {
  const vars = { ...VARS, MAX_BODY_BYTES: '200000' };
  const tooBig = new RegExp(`^the image at ${host.replace(/\./g, '\\.')} is over 200000 bytes \\(MAX_BODY_BYTES\\)$`);

  it('refuses early a body announced over the limit (the server then stalls: no waiting for it)', async () => {
    const started = Date.now();
    await expectError(await fromUrl(`${base}/huge/announced?bytes=1000000`, vars), 413, 'payload_too_large', tooBig);
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('counts a chunked body with no Content-Length as it arrives', async () => {
    await expectError(await fromUrl(`${base}/huge/chunked?bytes=1000000`, vars), 413, 'payload_too_large', tooBig);
  });

  it('does not trust a Content-Length under the limit when more arrives (gzip inflated by the runtime)', async () => {
    await expectError(await fromUrl(`${base}/huge/gzip?bytes=5000000`, vars), 413, 'payload_too_large', tooBig);
  });

  it('accepts a body just under the limit (then the decoder judges it)', async () => {
    // 199 999 bytes that start like a JPEG and are no image: the limit let it through.
    await expectError(await fromUrl(`${base}/huge/chunked?bytes=199999`, vars), 422, 'unprocessable_image');
  });
});

describe('URL input: refused URLs and bad bodies', () => {
  it('refuses, without fetching, localhost, private and loopback addresses in any spelling, and its own host', async () => {
    const open = { URL_TIMEOUT_MS: '3000' };
    const refused: Array<[string, RegExp]> = [
      ['http://127.0.0.1:PORT', /127\.0\.0\.1:\d+: a loopback address/],
      ['http://2130706433:PORT', /127\.0\.0\.1:\d+: a loopback address/],
      ['http://0x7f.1:PORT', /127\.0\.0\.1:\d+: a loopback address/],
      ['http://[::ffff:127.0.0.1]:PORT', /a loopback \(IPv4-mapped\) address/],
      ['http://[::1]:PORT', /\[::1\]:\d+: a loopback address/],
      ['http://localhost:PORT', /localhost:\d+: localhost/],
      ['http://images.localhost:PORT', /localhost$/],
      ['http://0.0.0.0:PORT', /an unspecified address/],
      ['http://169.254.169.254', /a link-local address/],
      ['http://10.1.2.3', /a private address/],
      ['http://100.64.0.1', /a CGNAT address/],
      ['http://[fd00::1]', /a unique-local address/],
      ['http://edge.test', /edge\.test: the Worker's own host/],
    ];
    for (const [origin, message] of refused) {
      const path = unique('refused');
      const body = await expectError(await fromUrl(`${origin.replace('PORT', port)}${path}?token=SECRET`, open), 400, 'bad_request', message);
      expect(body.message).toMatch(/^refused URL to /);
      expect(body.message).not.toMatch(/SECRET|never/);
      expect(await hits(path), origin).toBe(0);
    }
  });

  it('with URL_HOSTS set, refuses every host not listed', async () => {
    const body = await expectError(await fromUrl('https://images.example.com/cat.jpg', VARS), 400, 'bad_request');
    expect(body.message).toBe('refused URL to images.example.com: the host is not in URL_HOSTS');
  });

  it('refuses schemes other than http and https, and credentials', async () => {
    await expectError(await fromUrl('ftp://127.0.0.1/cat.jpg'), 400, 'bad_request', /scheme ftp: is not http or https/);
    await expectError(await fromUrl('data:image/jpeg;base64,/9j/4AAQ'), 400, 'bad_request', /scheme data:/);
    await expectError(await fromUrl(`http://user:pw@${host}/image/chelsea.jpg`), 400, 'bad_request', /credentials/);
  });

  it('answers 400 for malformed JSON, a missing or non-string url, and what is no absolute URL', async () => {
    const post = (body: string) => call('/predict', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body }, VARS);
    await expectError(await post('{"url": '), 400, 'bad_request', /^malformed JSON body$/);
    await expectError(await post(''), 400, 'bad_request', /^malformed JSON body$/);
    for (const json of ['{}', '{"URL": "http://x/"}', '{"url": 42}', '{"url": null}', '["http://127.0.0.1/"]', '"http://127.0.0.1/"', 'null']) {
      await expectError(await post(json), 400, 'bad_request', /^"url" is missing or not a string/);
    }
    for (const url of ['cat.jpg', '/image/chelsea.jpg', 'http://', '']) {
      await expectError(await fromUrl(url), 400, 'bad_request', /is not an absolute URL/);
    }
  });

  it('needs the API key like any upload: nothing is fetched without it', async () => {
    const path = `/image/chelsea.jpg`;
    const before = await hits(path);
    await expectError(await fromUrl(`${base}${path}`, { ...VARS, API_KEY: 'k3y' }), 401, 'unauthorized');
    expect(await hits(path)).toBe(before);
    const ok = await call(
      '/predict',
      { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-API-Key': 'k3y' }, body: JSON.stringify({ url: `${base}${path}` }) },
      { ...VARS, API_KEY: 'k3y' },
    );
    expect(ok.status).toBe(200);
    expect(await hits(path)).toBe(before + 1);
  });
});
