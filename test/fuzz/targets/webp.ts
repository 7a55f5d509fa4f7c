/**
 * WebP: our RIFF container reader (src/image/webp/header.ts) on every input, and for a quarter
 * of them (picked from the bytes) the whole decode through libwebp's wasm (decodeImageAsync).
 * Node needs the .wasm import handled: test/node/setup-wasm.ts under vitest, and
 * models/src/node-wasm.ts (imported first by test/fuzz/run.ts) under tsx.
 */
import { decodeImageAsync, planDecode } from '../../../src/image/index';
import { readWebpHeader } from '../../../src/image/webp/header';
import { corpus, WEBP } from '../formats';
import { Corpus, countAllocations, mutatedCorpus, Violation, type Target } from '../harness';
import { allPaths, decodeTimeBound, LIMITS, pickOf } from './decode';

// big-4032x3024-lossy.webp (12 MP) is left out: each decode of it takes about a second.
export const WEBP_CORPUS = new Corpus(corpus(['test/fixtures/webp'], ['.webp']).filter((f) => !f.name.includes('4032x3024')));

function header(bytes: Uint8Array): void {
  const h = readWebpHeader(bytes);
  const f = h.frame;
  const problems = [
    !(h.width >= 1 && h.height >= 1) && `size ${h.width}x${h.height}`,
    !(f.width >= 1 && f.height >= 1 && f.x >= 0 && f.y >= 0 && f.x + f.width <= h.width && f.y + f.height <= h.height) &&
      `frame ${f.width}x${f.height}+${f.x}+${f.y} on ${h.width}x${h.height}`,
    !(f.start >= 12 && f.start < f.end && f.end <= bytes.length) && `frame bytes [${f.start}, ${f.end}) of ${bytes.length}`,
    f.alphEnd > 0 && !(f.alphStart >= 12 && f.alphStart < f.alphEnd && f.alphEnd <= bytes.length) && `ALPH bytes [${f.alphStart}, ${f.alphEnd})`,
    !(Number.isInteger(h.orientation) && h.orientation >= 1 && h.orientation <= 8) && `orientation ${h.orientation}`,
  ].filter(Boolean);
  if (problems.length) throw new Violation(`readWebpHeader: ${problems.join('; ')}`);
}

async function decode(bytes: Uint8Array): Promise<void> {
  if (pickOf(bytes, 4) !== 0) return;
  const plan = planDecode(bytes, LIMITS, { collect: true });
  const { value: image, bytes: used } = await countAllocations(() => decodeImageAsync(bytes, LIMITS));
  if (used > plan.memoryBytes) throw new Violation(`decodeImageAsync (${plan.path}): allocated ${used} bytes in JS, its accounting says ${plan.memoryBytes}`);
  const t = plan.header.orientation >= 5;
  const [w, hgt] = t ? [plan.height, plan.width] : [plan.width, plan.height];
  if (image.width !== w || image.height !== hgt || image.data.length !== w * hgt * 3) {
    throw new Violation(`decodeImageAsync: ${image.width}x${image.height} with ${image.data.length} bytes, the header says ${w}x${hgt}`);
  }
}

export const webp: Target = {
  name: 'webp',
  arbitrary: mutatedCorpus('webp', WEBP_CORPUS, WEBP),
  corpus: WEBP_CORPUS,
  async check(bytes) {
    allPaths(bytes, [header]);
    await decode(bytes);
  },
  timeBoundMs: decodeTimeBound,
};
