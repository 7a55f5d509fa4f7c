/**
 * An RPC caller's image (bytes, a stream, or `{ url }`) as an Upload, under the limits an HTTP
 * request gets: MAX_BODY_BYTES on bytes and streams (counted as a stream arrives, so a caller
 * cannot make us hold more than the limit), and URL input's own rules.
 */
import type { Config } from '../config';
import { ApiError, badRequest, tooLarge } from '../errors';
import { uploadFromUrl, type Upload } from '../upload';

export async function readImage(image: unknown, config: Config): Promise<Upload> {
  if (image instanceof ReadableStream) return { name: 'stream', bytes: nonEmpty(await readStream(image, config.maxBodyBytes)) };
  if (image instanceof ArrayBuffer) return { name: 'bytes', bytes: nonEmpty(limited(new Uint8Array(image), config.maxBodyBytes)) };
  if (ArrayBuffer.isView(image)) {
    const bytes = new Uint8Array(image.buffer, image.byteOffset, image.byteLength);
    return { name: 'bytes', bytes: nonEmpty(limited(bytes, config.maxBodyBytes)) };
  }
  if (typeof image === 'object' && image !== null && 'url' in image) {
    // An RPC call has no request URL, so there is no own host name to refuse besides the usual ones.
    return uploadFromUrl((image as { url: unknown }).url, config, []);
  }
  throw badRequest('image must be bytes (Uint8Array or ArrayBuffer), a ReadableStream of bytes, or { url: "https://..." }');
}

const over = (max: number) => tooLarge(`image over ${max} bytes (MAX_BODY_BYTES)`);

function limited(bytes: Uint8Array, max: number): Uint8Array {
  if (bytes.byteLength > max) throw over(max);
  return bytes;
}

function nonEmpty(bytes: Uint8Array): Uint8Array {
  if (bytes.byteLength === 0) throw badRequest('no image: the image is empty');
  return bytes;
}

/** The stream's bytes, refused (and the stream cancelled) as soon as they pass `max`. */
async function readStream(stream: ReadableStream, max: number): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<unknown>;
      try {
        chunk = (await reader.read()) as ReadableStreamReadResult<unknown>;
      } catch (err) {
        // The caller's side failed (its stream errored, its Worker went away): its fault, not ours.
        throw new ApiError('bad_request', 'the image stream failed before its end', { cause: err });
      }
      const { done, value } = chunk;
      if (done) break;
      if (!(value instanceof Uint8Array)) throw badRequest('the image stream must carry bytes (Uint8Array chunks)');
      total += value.byteLength;
      if (total > max) throw over(max);
      chunks.push(value);
    }
  } catch (err) {
    void reader.cancel().catch(() => {});
    throw err;
  }
  if (chunks.length === 1) return chunks[0]!;
  const bytes = new Uint8Array(total);
  chunks.reduce((offset, chunk) => (bytes.set(chunk, offset), offset + chunk.byteLength), 0);
  return bytes;
}
