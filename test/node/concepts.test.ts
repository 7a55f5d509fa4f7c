/**
 * The concept table against WordNet 3.0 itself: the generator walks hypernym pointers up from
 * the 1000 classes; this test walks the hyponym pointers (~, ~i) down from every concept, read
 * straight from data.noun, and must find the same classes.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOutputs, imagenetOffsets, LICENSE_FILE, readWordNet, ROOT, TABLE_FILE, untar, WORDNET_PACKAGE, type WordNet } from '../../scripts/make-concepts';
import { baseForms, parseConceptTable, parseLemmaIndex, resolve, searchLemmaIndex, type ConceptTable } from '../../src/concepts/table';

let wordnet: WordNet;
let table: ConceptTable;
let classIds: string[];
/** data.noun offset -> hyponym offsets, parsed here independently of the generator. */
const hyponyms = new Map<string, string[]>();

beforeAll(() => {
  wordnet = readWordNet();
  classIds = imagenetOffsets().map((o) => `n${o}`);
  table = parseConceptTable(readFileSync(TABLE_FILE, 'utf8'), classIds);
  const files = untar(gunzipSync(readFileSync(join(WORDNET_PACKAGE, 'WNdb-3.0.tar.gz'))));
  for (const line of new TextDecoder('latin1').decode(files.get('dict/data.noun')).split('\n')) {
    if (!/^\d{8} /.test(line)) continue;
    const tokens = line.split(' | ')[0]!.split(' ');
    const below: string[] = [];
    tokens.forEach((t, i) => {
      if ((t === '~' || t === '~i') && tokens[i + 2] === 'n') below.push(tokens[i + 1]!);
    });
    hyponyms.set(tokens[0]!, below);
  }
});

/** The ImageNet classes below a synset, walking hyponyms down. */
function classesBelow(offset: string): string[] {
  const classes = new Set(classIds.map((id) => id.slice(1)));
  const found = new Set<string>();
  const seen = new Set<string>();
  const stack = [offset];
  while (stack.length > 0) {
    const o = stack.pop()!;
    if (seen.has(o)) continue;
    seen.add(o);
    if (classes.has(o)) found.add(`n${o}`);
    stack.push(...(hyponyms.get(o) ?? []));
  }
  return [...found].sort();
}

describe('concept table (scripts/make-concepts.ts)', () => {
  it('is what the generator makes from WNdb-3.0.tar.gz (the committed file is up to date)', () => {
    expect(readFileSync(TABLE_FILE, 'utf8')).toBe(buildOutputs(wordnet, imagenetOffsets()).table);
  });

  it('holds the WordNet license as the data files state it', () => {
    const license = readFileSync(LICENSE_FILE, 'utf8');
    const packaged = readFileSync(join(WORDNET_PACKAGE, 'LICENSE'), 'utf8');
    const words = (s: string) => s.split(/\s+/).filter(Boolean).join(' ');
    expect(words(packaged)).toContain(words(license));
    expect(license).toMatch(/WordNet 3\.0 Copyright 2006 by Princeton University/);
  });

  it('has every synset with a class below it (walking hyponyms down), and the same classes', () => {
    const expected = [...hyponyms.keys()].map((o) => [o, classesBelow(o)] as const).filter(([, c]) => c.length > 0);
    expect(table.concepts.size).toBe(expected.length);
    expect(table.concepts.size).toBeGreaterThan(1800);
    for (const [offset, classes] of expected) {
      const concept = table.concepts.get(`n${offset}`);
      expect(concept, `n${offset}`).toBeDefined();
      expect(concept!.classes.map((i) => classIds[i]).sort()).toEqual(classes);
    }
  });

  it('gives the counts of the issue: dog 118, cat (cat, true cat) 7, weapon 7; the classes are leaves', () => {
    expect(table.concepts.get('n02084071')!.classes).toHaveLength(118);
    expect(classesBelow('02084071')).toHaveLength(118);
    const cat = resolve(table, 'cat');
    expect(cat.ok && cat.concept).toMatchObject({ id: 'n02121620', name: 'cat, true cat' });
    expect(cat.ok && cat.concept.classes).toHaveLength(7);
    expect(table.concepts.get('n04565375')!.classes).toHaveLength(7);
    for (const [i, id] of classIds.entries()) expect(table.concepts.get(id)!.classes).toEqual([i]);
  });

  it('resolves lemmas to the first sense of index.noun that has classes', () => {
    // crane: sense 1 is Hart Crane (no class), then the bird (n02012849), then the machine.
    const senses = wordnet.index.get('crane')!;
    const first = senses.find((o) => table.concepts.has(`n${o}`));
    expect(senses.indexOf(first!)).toBeGreaterThan(0);
    const crane = resolve(table, 'Crane');
    expect(crane.ok && crane.concept.id).toBe(`n${first}`);
  });

  it('takes plurals through noun.exc and the morphy endings', () => {
    expect(baseForms('wolves', wordnet.exceptions)).toContain('wolf');
    for (const [plural, singular] of [['dogs', 'dog'], ['wolves', 'wolf'], ['boxes', 'box'], ['foxes', 'fox'], ['churches', 'church'], ['frogmen', 'frogman'], ['butterflies', 'butterfly'], ['Egyptian cats', 'egyptian_cat']]) {
      const a = resolve(table, plural!);
      const b = resolve(table, singular!);
      expect(a.ok, plural).toBe(true);
      expect(a.ok && b.ok && a.concept.id, plural).toBe(b.ok && b.concept.id);
    }
  });

  it('lists the senses of a lemma that has none with classes, from the generated index', () => {
    const { senses } = buildOutputs(wordnet, imagenetOffsets());
    const generated = readFileSync(join(ROOT, 'src/concepts/generated/noun-senses.txt'), 'utf8');
    expect(generated).toBe(senses);
    // Searching the text finds what parsing it does.
    const searched = searchLemmaIndex(generated);
    const parsed = parseLemmaIndex(generated);
    for (const lemma of ['happiness', "'hood", '.22', 'zymurgy', 'nudity']) expect(searched.lemmas.get(lemma)).toEqual(parsed.lemmas.get(lemma));
    expect(searched.lemmas.get('happines')).toBeUndefined();
    expect(searched.lemmas.get('dog')).toBeUndefined(); // a concept lemma: in the table, not here
    const happiness = resolve(table, 'happiness', () => searched);
    expect(happiness).toEqual({ ok: false, reason: 'no_concept_sense', senses: wordnet.index.get('happiness')!.map((o) => `n${o}`) });
    expect(resolve(table, 'qwertyuiop', () => searched)).toMatchObject({ ok: false, reason: 'unknown' });
    expect(resolve(table, 'n00000000')).toMatchObject({ ok: false, reason: 'not_a_concept' });
  });
});
