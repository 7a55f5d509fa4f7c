/**
 * The models in R2: manifests, the list of uploaded ids, and model files checked against their
 * manifest (size, sha256) before anything is made of them. R2's own failures become 503s that
 * name what was being read; nothing here knows about sessions.
 */
import { ApiError, modelUnavailable, notFound } from '../errors';
import { MODEL_IDS, manifestKey, modelKey, type ModelManifest } from './manifest';
import { parseManifest } from './validate';

/** What the manifest says of one file in R2: the whole model or a stage of it. */
export type ModelFile = Pick<ModelManifest, 'sha256' | 'bytes' | 'session'> & { input: { name: string }; output: { name: string } };

const MODEL_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export class ModelStore {
  constructor(private readonly bucket: R2Bucket) {}

  /** Reads a model's manifest from R2: 404 for ids we have never heard of, 503 for zoo ids not uploaded. */
  async manifest(id: string): Promise<ModelManifest> {
    checkId(id);
    const text = await fromR2(`model ${id}: manifest.json`, async () => {
      const object = await this.bucket.get(manifestKey(id));
      return object ? object.text() : null;
    });
    if (text === null) throw missing(id);
    return parseManifest(id, text);
  }

  /** Every model with a manifest in the bucket, sorted by id; unreadable manifests are reported, not hidden. */
  async list(): Promise<Array<{ id: string; manifest?: ModelManifest; error?: string }>> {
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await fromR2('the model list', () => this.bucket.list({ prefix: 'models/', delimiter: '/', cursor }));
      for (const prefix of page.delimitedPrefixes) ids.push(prefix.slice('models/'.length, -1));
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    ids.sort();
    return Promise.all(
      ids.map(async (id) => {
        try {
          return { id, manifest: await this.manifest(id) };
        } catch (err) {
          return { id, error: err instanceof Error ? err.message : String(err) };
        }
      }),
    );
  }

  /** Whether both files of a model are in the bucket, without reading them. */
  async available(id: string): Promise<boolean> {
    checkId(id);
    const [manifest, model] = await fromR2(`model ${id}`, () =>
      Promise.all([this.bucket.head(manifestKey(id)), this.bucket.head(modelKey(id))]),
    );
    return manifest !== null && model !== null;
  }

  /**
   * The bytes of one model file (`key`; `what` names it in errors), once they match its
   * manifest entry: a truncated or replaced file is a 503, never a session of unknown weights.
   */
  async verifiedFile(id: string, key: string, what: string, file: ModelFile): Promise<Uint8Array> {
    const body = await fromR2(`model ${id}: ${what}`, async () => {
      const object = await this.bucket.get(key);
      return object ? object.arrayBuffer() : null;
    });
    if (!body) throw modelUnavailable(`model ${id}: ${what} is missing from the bucket`);
    const bytes = new Uint8Array(body);
    if (bytes.byteLength !== file.bytes) {
      throw modelUnavailable(`model ${id}: ${what} has ${bytes.byteLength} bytes, manifest says ${file.bytes}`);
    }
    const digest = hex(await crypto.subtle.digest('SHA-256', bytes));
    if (digest !== file.sha256) {
      throw modelUnavailable(`model ${id}: ${what} fails its sha256 check`);
    }
    return bytes;
  }
}

/** Ids are path segments of R2 keys: anything else is an unknown model (404), never a key. */
export function checkId(id: string): void {
  if (!MODEL_ID.test(id)) throw notFound(`unknown model "${id.slice(0, 64)}"`);
}

/**
 * An R2 call, with its failures (the request, or the body stream breaking mid-read) turned
 * into a 503 that names what was being read: an operator problem that usually passes, never
 * an opaque 500.
 */
async function fromR2<T>(what: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof ApiError) throw err;
    // R2's own message goes to the log as the error's cause (src/errors.ts hiddenCause), not to
    // the caller: it may name internals the caller has no use for.
    throw modelUnavailable(`${what}: reading from R2 failed; retry shortly`, err);
  }
}

function missing(id: string): ApiError {
  // A zoo model we know of but that has not been uploaded is an operator problem (503);
  // any other name is the caller's mistake (404).
  return (MODEL_IDS as readonly string[]).includes(id)
    ? modelUnavailable(`model ${id} is not in the bucket (upload it with the models CLI)`)
    : notFound(`unknown model "${id}"`);
}

function hex(buffer: ArrayBuffer): string {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
}
