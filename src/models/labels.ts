import synsetText from './imagenet-synset.txt';

/** One ImageNet-1k class, in the models' output order. */
export interface ImageNetClass {
  index: number;
  /** WordNet id, e.g. `n02124075`. */
  synset: string;
  /** Comma-separated names, e.g. `Egyptian cat`. */
  label: string;
}

let classes: readonly ImageNetClass[] | undefined;

/** The 1000 classes, parsed on first use (not at start-up: Workers bill start-up time). */
export function imagenetClasses(): readonly ImageNetClass[] {
  classes ??= parseSynsets(synsetText);
  return classes;
}

export function parseSynsets(text: string): ImageNetClass[] {
  const list = text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line, index) => {
      const space = line.indexOf(' ');
      return { index, synset: line.slice(0, space), label: line.slice(space + 1) };
    });
  if (list.length !== 1000) throw new Error(`imagenet-synset.txt has ${list.length} classes, expected 1000`);
  return list;
}
