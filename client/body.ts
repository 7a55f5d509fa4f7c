/**
 * Turns images into request bodies the routes read (src/upload): one or several files in the
 * multipart field `data`, or a JSON body `{ url }`. Only web-standard APIs (Blob, FormData,
 * Response), so the same code runs in Workers, Node >= 20 and browsers.
 */
import type { ImageBytes, ImageInput, InlinePolicy } from './types.js';

export interface Body {
  body: FormData | string;
  /** Set for JSON; FormData sets its own multipart boundary. */
  contentType?: string;
}

const isUrl = (x: ImageInput): x is { url: string } =>
  typeof x === 'object' && x !== null && !isBlob(x) && !ArrayBuffer.isView(x) && !(x instanceof ArrayBuffer) && 'url' in x;

// Duck-typed as well as instanceof: a Blob from another realm (a polyfill, a test's jsdom) still is one.
const isBlob = (x: unknown): x is Blob =>
  (typeof Blob !== 'undefined' && x instanceof Blob) ||
  (typeof x === 'object' && x !== null && typeof (x as Blob).arrayBuffer === 'function' && typeof (x as Blob).size === 'number');

const isStream = (x: unknown): x is ReadableStream<Uint8Array> =>
  typeof x === 'object' && x !== null && typeof (x as ReadableStream).getReader === 'function';

/**
 * One image or a batch (an array: classified in one inference run, at most the server's
 * MAX_IMAGES). A `{ url }` goes alone: the API takes one URL a request.
 */
export async function imageBody(input: ImageInput | readonly ImageBytes[], policy?: InlinePolicy): Promise<Body> {
  if (!Array.isArray(input) && isUrl(input as ImageInput)) {
    const { url } = input as { url: string };
    if (typeof url !== 'string') throw new TypeError('{ url } must be a string');
    return { body: JSON.stringify(policy ? { url, policy } : { url }), contentType: 'application/json' };
  }
  const images: readonly ImageInput[] = Array.isArray(input) ? input : [input as ImageInput];
  if (images.length === 0) throw new TypeError('no image: pass one image or a non-empty array of them');
  const form = new FormData();
  for (const image of images) {
    if (isUrl(image)) throw new TypeError('a { url } cannot be part of a batch: the API fetches one URL a request');
    const blob = await toBlob(image);
    form.append('data', blob, typeof (blob as File).name === 'string' && (blob as File).name ? (blob as File).name : 'image');
  }
  // A file field would also count as an image: the policy goes as text (src/routes/moderate.ts).
  if (policy) form.append('policy', JSON.stringify(policy));
  return { body: form };
}

/**
 * Bytes as a Blob, whose content FormData can send again on a retry. A stream is read whole
 * first: streaming a request body needs `duplex: 'half'` in Node and is missing in some
 * browsers, and an image is bounded by the server's MAX_BODY_BYTES anyway.
 */
async function toBlob(image: ImageBytes): Promise<Blob> {
  if (isBlob(image)) return image;
  if (image instanceof ArrayBuffer) return new Blob([image]);
  if (ArrayBuffer.isView(image)) {
    const view = new Uint8Array(image.buffer, image.byteOffset, image.byteLength);
    // A view of a SharedArrayBuffer is no BlobPart: copy it into an ordinary one.
    return new Blob([view.buffer instanceof ArrayBuffer ? (view as Uint8Array<ArrayBuffer>) : view.slice()]);
  }
  if (isStream(image)) return new Response(image).blob();
  throw new TypeError('an image is a Blob, File, ArrayBuffer, typed array, ReadableStream or { url }');
}
