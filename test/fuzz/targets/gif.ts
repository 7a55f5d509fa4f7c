/** GIF: our reader and LZW decoder (src/image/gif.ts), first frame. */
import { corpus, GIF } from '../formats';
import { Corpus, mutatedCorpus, type Target } from '../harness';
import { allPaths, decodeTimeBound, decodeWhole } from './decode';

export const GIF_CORPUS = new Corpus(corpus(['test/fixtures/gif'], ['.gif'], 128 * 1024));

export const gif: Target = {
  name: 'gif',
  arbitrary: mutatedCorpus('gif', GIF_CORPUS, GIF),
  corpus: GIF_CORPUS,
  check: (bytes) => allPaths(bytes, [decodeWhole]),
  timeBoundMs: decodeTimeBound,
};
