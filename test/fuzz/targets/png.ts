/** PNG: our chunk reader and inflater (src/image/png.ts), whole and streamed. */
import { corpus, PNG } from '../formats';
import { Corpus, mutatedCorpus, type Target } from '../harness';
import { allPaths, decodeTimeBound, decodeStreamed, decodeWhole } from './decode';

export const PNG_CORPUS = new Corpus(corpus(['test/fixtures/png', 'test/fixtures/images'], ['.png']));

export const png: Target = {
  name: 'png',
  arbitrary: mutatedCorpus('png', PNG_CORPUS, PNG),
  corpus: PNG_CORPUS,
  check: (bytes) => allPaths(bytes, [decodeWhole, decodeStreamed]),
  timeBoundMs: decodeTimeBound,
};
