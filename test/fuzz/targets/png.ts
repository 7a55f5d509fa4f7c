/**
 * PNG: our chunk reader and the row readers (src/image/png.ts), whole and streamed; and the
 * two row readers against each other: the wasm module (zlib, as in the Worker) and our JS
 * inflater and unfilter must give the same pixels, or both refuse.
 */
import { decodePng, readPngHeader, usePngRows } from '../../../src/image/png';
import { corpus, PNG } from '../formats';
import { Corpus, mutatedCorpus, Violation, type Target } from '../harness';
import { allPaths, decodeTimeBound, decodeStreamed, decodeWhole, LIMITS } from './decode';

export const PNG_CORPUS = new Corpus(corpus(['test/fixtures/png', 'test/fixtures/images'], ['.png']));

const isApi = (err: unknown): boolean => err instanceof Error && err.name === 'ApiError';

/** Pixels with the given row reader, or null for a refusal. */
function pixels(bytes: Uint8Array, kind: 'wasm' | 'js'): Uint8Array | null {
  const previous = usePngRows(kind);
  try {
    const header = readPngHeader(bytes);
    if (header.width * header.height > LIMITS.maxPixels) return null;
    return decodePng(bytes, header, LIMITS).data;
  } catch (err) {
    if (isApi(err)) return null;
    throw err;
  } finally {
    usePngRows(previous);
  }
}

function sameRows(bytes: Uint8Array): void {
  const wasm = pixels(bytes, 'wasm');
  const js = pixels(bytes, 'js');
  if ((wasm === null) !== (js === null)) throw new Violation(`the wasm rows ${wasm ? 'decode' : 'refuse'} what the JS rows ${js ? 'decode' : 'refuse'}`);
  if (wasm && js && (wasm.length !== js.length || wasm.some((v, i) => v !== js[i]))) throw new Violation('the wasm and JS rows give different pixels');
}

export const png: Target = {
  name: 'png',
  arbitrary: mutatedCorpus('png', PNG_CORPUS, PNG),
  corpus: PNG_CORPUS,
  check: (bytes) => allPaths(bytes, [sameRows, decodeWhole, decodeStreamed]),
  timeBoundMs: (bytes) => 2 * decodeTimeBound(bytes),
};
