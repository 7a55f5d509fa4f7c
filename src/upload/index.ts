/**
 * Reads the images of a request: the multipart field `data` (one file or several, classified
 * as one batch), any single file field, the raw body, or a JSON body `{ "url": ... }` whose
 * image the Worker fetches (src/url). The request body's size limit is enforced before this
 * runs (see `limitBody` in src/app.ts); a fetched image gets the same limit here.
 */
import type { HonoRequest } from 'hono';
import { badRequest, tooLarge } from '../errors';
import { describeHost, fetchImage, parseImageUrl } from '../url/fetch';
import { hostRules } from '../url/hosts';

export interface Upload {
  /** Where the image came from, for error messages: `data`, `data[1]`, `body`, `url (host)`. */
  name: string;
  bytes: Uint8Array;
  /** Fetched from a URL: its errors always name it (the host), even alone in its request. */
  fromUrl?: boolean;
}

/** What fetching a URL input needs from the Config (src/config.ts): pass the Config itself. */
export interface UrlInputLimits {
  maxBodyBytes: number;
  urlTimeoutMs: number;
  urlHosts: string[];
}

/**
 * The images of a request, at most `maxImages`. A route takes URL input (a JSON body) only
 * when it passes `urlInput`; without it a JSON body is a 400.
 */
export async function readUploads(req: HonoRequest, maxImages: number, urlInput?: UrlInputLimits): Promise<Upload[]> {
  const type = req.header('Content-Type') ?? '';
  const uploads = /^multipart\/form-data/i.test(type)
    ? await fromMultipart(req)
    : JSON_TYPE.test(type)
      ? await fromUrl(req, urlInput)
      : await fromBody(req);
  if (uploads.length > maxImages) throw tooLarge(`too many images: ${uploads.length}, the limit is ${maxImages}`);
  return uploads;
}

/** application/json and the structured `+json` types. */
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * `{ "url": "https://..." }`. Other keys are left to the route (e.g. `policy`): Hono caches the
 * parsed body, so the route's own `req.json()` reads the same object.
 */
async function fromUrl(req: HonoRequest, limits: UrlInputLimits | undefined): Promise<Upload[]> {
  if (!limits) throw badRequest('this route takes no URL input: send the image as multipart field "data" or as the body');
  let body: unknown;
  try {
    body = await req.json();
  } catch {
    throw badRequest('malformed JSON body');
  }
  const raw = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { url?: unknown }).url : undefined;
  return [await uploadFromUrl(raw, limits, [new URL(req.url).host, req.header('Host')])];
}

/**
 * The image at a caller's URL as an Upload, under the same rules whatever the caller (HTTP
 * or RPC). `selfHosts`: the names this Worker was reached on, refused as targets.
 */
export async function uploadFromUrl(raw: unknown, limits: UrlInputLimits, selfHosts: ReadonlyArray<string | undefined>): Promise<Upload> {
  if (typeof raw !== 'string') throw badRequest('"url" is missing or not a string: send { "url": "https://..." }, the address of an image');
  const rules = hostRules(limits.urlHosts, selfHosts);
  const url = parseImageUrl(raw, rules);
  const { bytes } = await fetchImage(url, { rules, timeoutMs: limits.urlTimeoutMs, maxBytes: limits.maxBodyBytes });
  // Named by host only: a URL's path and query may carry secrets.
  return { name: `url (${describeHost(url)})`, bytes, fromUrl: true };
}

async function fromMultipart(req: HonoRequest): Promise<Upload[]> {
  let form: FormData;
  try {
    form = await req.formData();
  } catch {
    throw badRequest('malformed multipart body');
  }
  const files: Array<[string, File]> = [];
  for (const [field, value] of form.entries()) {
    if (typeof value !== 'string') files.push([field, value]);
    else if (field === 'data') throw badRequest('field "data" must be a file (curl: -F "data=@image.jpg")');
  }
  const data = files.filter(([field]) => field === 'data');
  // The seed's clients send `data`; other clients name their single file field as they like.
  const chosen = data.length > 0 ? data : files;
  if (chosen.length === 0) throw badRequest('no image: send it in the multipart field "data"');
  if (data.length === 0 && chosen.length > 1) {
    throw badRequest(`several file fields (${files.map(([f]) => f).join(', ')}): send the images in "data"`);
  }
  return Promise.all(
    chosen.map(async ([field, file], i) => ({
      name: chosen.length > 1 ? `${field}[${i}]` : field,
      bytes: new Uint8Array(await file.arrayBuffer()),
    })),
  );
}

async function fromBody(req: HonoRequest): Promise<Upload[]> {
  const bytes = new Uint8Array(await req.arrayBuffer());
  if (bytes.byteLength === 0) throw badRequest('no image: send it as multipart field "data" or as the request body');
  return [{ name: 'body', bytes }];
}
