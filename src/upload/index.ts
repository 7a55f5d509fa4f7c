/**
 * Reads the images of a predict request: the multipart field `data` (one file or several,
 * classified as one batch), any single file field, or the raw body. The body size limit is
 * enforced before this runs (see `limitBody` in src/app.ts).
 */
import type { HonoRequest } from 'hono';
import { badRequest, tooLarge } from '../errors';

export interface Upload {
  /** Where the image came from, for error messages: `data`, `data[1]`, `body`. */
  name: string;
  bytes: Uint8Array;
}

export async function readUploads(req: HonoRequest, maxImages: number): Promise<Upload[]> {
  const type = req.header('Content-Type') ?? '';
  const uploads = /^multipart\/form-data/i.test(type) ? await fromMultipart(req) : await fromBody(req);
  if (uploads.length > maxImages) throw tooLarge(`too many images: ${uploads.length}, the limit is ${maxImages}`);
  return uploads;
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
