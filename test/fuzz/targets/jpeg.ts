/** JPEG: our header reader (src/image/jpeg.ts) and decoder (src/image/jpeg/), whole and streamed. */
import { corpus, JPEG } from '../formats';
import { Corpus, mutatedCorpus, type Target } from '../harness';
import { allPaths, decodeTimeBound, decodeStreamed, decodeWhole } from './decode';

// big-4032x3024-prog.jpg (12 MP) is left out: a mutant of it takes ~1 s, a hundred times the rest.
export const JPEG_CORPUS = new Corpus(corpus(['test/fixtures/jpeg', 'test/fixtures/images'], ['.jpg']));

export const jpeg: Target = {
  name: 'jpeg',
  arbitrary: mutatedCorpus('jpeg', JPEG_CORPUS, JPEG),
  corpus: JPEG_CORPUS,
  check: (bytes) => allPaths(bytes, [decodeWhole, decodeStreamed]),
  timeBoundMs: decodeTimeBound,
};
