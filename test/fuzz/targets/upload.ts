/**
 * The upload handling (src/upload/index.ts readUploads) around Request.formData(): hostile
 * multipart bodies (boundaries long, odd and wrong; parts with and without names and file
 * names; LF-only line ends and missing CRLFs; huge part headers; hundreds of parts; no closing
 * boundary) and raw bodies, then generic mutations on top. readUploads gives 1..maxImages
 * uploads, or a 400/413.
 *
 * In Node, Request.formData() is undici's parser, close to but not workerd's (which is the
 * Worker's real one): test/worker/fuzz-upload.test.ts feeds bodies from here through the Worker.
 *
 * The input file is one JSON line (Content-Type, maxImages) then the body.
 */
import fc from 'fast-check';
import { HonoRequest } from 'hono/request';
import { readUploads } from '../../../src/upload/index';
import { concat, genericOp, Violation, type Case, type Target } from '../harness';

const te = new TextEncoder();
const tokenChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\'()+_,-./:=?'.split(''));
const printable = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));

const boundaryArb = fc.oneof(
  fc.string({ unit: tokenChar, minLength: 1, maxLength: 70 }),
  fc.constantFrom('x', '----WebKitFormBoundary7MA4YWxkTrZu0gW', 'a b', '"q"', '--', '-'.repeat(70), 'B'.repeat(200), 'data'),
  fc.string({ unit: printable, minLength: 0, maxLength: 20 }),
);

interface Part {
  name: string | null;
  filename: string | null;
  type: string | null;
  extra: string[];
  body: Uint8Array;
}

const partArb: fc.Arbitrary<Part> = fc.record({
  name: fc.oneof(fc.constant('data'), fc.constant('data'), fc.constantFrom('image', 'file', '', 'da"ta', 'data\\', null), fc.string({ unit: printable, maxLength: 10 })),
  filename: fc.oneof(fc.constant('a.jpg'), fc.constantFrom(null, '', '../../etc/passwd', 'x"y.png', 'é.jpg'), fc.string({ unit: printable, maxLength: 10 })),
  type: fc.oneof(fc.constant('image/jpeg'), fc.constantFrom(null, '', 'text/plain', 'multipart/mixed; boundary=zz', 'application/octet-stream')),
  extra: fc.array(
    fc.oneof(
      fc.constantFrom('Content-Transfer-Encoding: base64', 'X-Junk: 1', 'Content-Disposition: attachment', 'no colon here', ': empty name', 'Content-Length: 5'),
      fc.integer({ min: 1000, max: 20000 }).map((n) => `X-Huge: ${'h'.repeat(n)}`),
    ),
    { maxLength: 2 },
  ),
  body: fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.constant(te.encode('\r\n--x--\r\n')), fc.constant(new Uint8Array([0xff, 0xd8, 0xff, 0xd9]))),
});

function disposition(p: Part): string | null {
  if (p.name === null && p.filename === null) return null;
  let d = 'Content-Disposition: form-data';
  if (p.name !== null) d += `; name="${p.name}"`;
  if (p.filename !== null) d += `; filename="${p.filename}"`;
  return d;
}

const cases: fc.Arbitrary<Case> = fc
  .record({
    boundary: boundaryArb,
    ct: fc.constantFrom('plain', 'plain', 'quoted', 'upper', 'other-boundary', 'no-boundary', 'octet', 'none', 'charset'),
    maxImages: fc.integer({ min: 1, max: 8 }),
    parts: fc.array(partArb, { maxLength: 10 }),
    repeat: fc.oneof(fc.constant(1), fc.constant(1), fc.constant(1), fc.constantFrom(9, 300, 2000)),
    eol: fc.constantFrom('\r\n', '\r\n', '\r\n', '\n', ''),
    close: fc.constantFrom('--', '--', '', '-'),
    preamble: fc.constantFrom('', '', 'preamble\r\n', '\r\n'),
    epilogue: fc.constantFrom('', '', '\r\n', 'epilogue'),
    ops: fc.array(genericOp, { maxLength: 2 }),
  })
  .map(({ boundary, ct, maxImages, parts, repeat, eol, close, preamble, epilogue, ops }) => {
    const chunks: Uint8Array[] = [te.encode(preamble)];
    // Many parts: copies of the first, without its huge headers (a body of 2000 x 20 KB says nothing more).
    const small = parts[0] && { ...parts[0], extra: parts[0].extra.filter((h) => h.length < 100) };
    const many = repeat > 1 && small ? Array.from({ length: repeat }, () => small) : parts;
    for (const p of many) {
      const headers = [disposition(p), p.type === null ? null : `Content-Type: ${p.type}`, ...p.extra].filter((h): h is string => h !== null);
      chunks.push(te.encode(`--${boundary}${eol}${headers.join(eol)}${eol}${eol}`), p.body, te.encode(eol));
    }
    chunks.push(te.encode(`--${boundary}${close}${eol}${epilogue}`));
    let body = concat(...chunks);
    for (const o of ops) body = o.apply(body, [body]);
    const contentType =
      ct === 'plain' ? `multipart/form-data; boundary=${boundary}`
      : ct === 'quoted' ? `multipart/form-data; boundary="${boundary}"`
      : ct === 'upper' ? `MULTIPART/FORM-DATA; BOUNDARY=${boundary}`
      : ct === 'other-boundary' ? 'multipart/form-data; boundary=other'
      : ct === 'no-boundary' ? 'multipart/form-data'
      : ct === 'charset' ? `multipart/form-data; charset=utf-8; boundary=${boundary}`
      : ct === 'octet' ? 'application/octet-stream'
      : null;
    const meta = { contentType, maxImages };
    const how = `upload: ${JSON.stringify(meta)} ${many.length} parts, eol ${JSON.stringify(eol)}, close ${JSON.stringify(close)}, body ${body.length} bytes${ops.length ? ` | ${ops.map((o) => o.what).join(' | ')}` : ''}`;
    return { bytes: concat(te.encode(`${JSON.stringify(meta)}\n`), body), how };
  });

/** The request an upload input stands for (also what the Worker test sends). */
export function uploadRequest(input: Uint8Array, url = 'http://edge.test/predict'): { request: Request; maxImages: number } {
  const nl = input.indexOf(10);
  const meta = JSON.parse(new TextDecoder().decode(input.subarray(0, nl))) as { contentType: string | null; maxImages: number };
  const headers = new Headers();
  if (meta.contentType !== null) headers.set('Content-Type', meta.contentType);
  return { request: new Request(url, { method: 'POST', headers, body: input.slice(nl + 1) }), maxImages: meta.maxImages };
}

export const UPLOAD_CASES = cases;

export const upload: Target = {
  name: 'upload',
  arbitrary: cases,
  async check(input) {
    const { request, maxImages } = uploadRequest(input);
    const uploads = await readUploads(new HonoRequest(request), maxImages);
    if (uploads.length < 1 || uploads.length > maxImages) throw new Violation(`${uploads.length} uploads, the limit is ${maxImages}`);
    for (const u of uploads) {
      if (typeof u.name !== 'string' || !(u.bytes instanceof Uint8Array)) throw new Violation(`upload ${JSON.stringify(u.name)} is not named bytes`);
    }
  },
  timeBoundMs: 2000,
};
