/**
 * The concept table (wordnet-concepts.txt, made by scripts/make-concepts.ts) and lemma
 * resolution over it. Pure: no Worker imports, so the models CLI can check policies with it.
 */

export interface Concept {
  /** WordNet 3.0 noun synset id, as ImageNet writes it: `n02084071`. */
  id: string;
  /** Lemmas as WordNet spells them, `_` for spaces: `dog`, `domestic_dog`, `Canis_familiaris`. */
  lemmas: string[];
  /** The lemmas as one display name, as ImageNet labels are written: `dog, domestic dog, Canis familiaris`. */
  name: string;
  gloss: string;
  /** Indices (0..999, model output order) of the ImageNet classes under it, ascending. */
  classes: number[];
}

/** A key -> values lookup: a Map, or a search of the record text. */
export interface Lookup {
  get(key: string): string[] | undefined;
}

/** One `L` or `E` record file: lemma -> sense offsets, inflected form -> base forms. */
export interface LemmaIndex {
  lemmas: Lookup;
  exceptions: Lookup;
}

export interface ConceptTable {
  lemmas: Map<string, string[]>;
  exceptions: Map<string, string[]>;
  /** By id (`n` + offset). */
  concepts: Map<string, Concept>;
}

/**
 * Parses the table; `classIds` are the 1000 ImageNet synset ids in output order. What is under
 * each synset comes from walking the hypernym edges up from every class (the classes are leaves).
 */
export function parseConceptTable(text: string, classIds: readonly string[]): ConceptTable {
  const parents = new Map<string, string[]>();
  const concepts = new Map<string, Concept>();
  const index = parseLemmaIndex(text);
  for (const line of text.split('\n')) {
    if (!line.startsWith('S ')) continue;
    const bar = line.indexOf(' | ');
    const [, offset, hypernyms, words] = line.slice(0, bar).split(' ');
    const lemmas = words!.split(',');
    const id = `n${offset}`;
    concepts.set(id, { id, lemmas, name: lemmas.map((l) => l.replace(/_/g, ' ')).join(', '), gloss: line.slice(bar + 3), classes: [] });
    parents.set(id, hypernyms === '-' ? [] : hypernyms!.split(',').map((h) => `n${h}`));
  }
  classIds.forEach((classId, classIndex) => {
    const stack = [classId];
    const seen = new Set<string>();
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      const concept = concepts.get(id);
      if (!concept) throw new Error(`concept table: ${id} (above ImageNet class ${classId}) is missing`);
      concept.classes.push(classIndex);
      stack.push(...parents.get(id)!);
    }
  });
  return { concepts, ...index };
}

export function parseLemmaIndex(text: string): { lemmas: Map<string, string[]>; exceptions: Map<string, string[]> } {
  const lemmas = new Map<string, string[]>();
  const exceptions = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    if (line.startsWith('L ') || line.startsWith('E ')) {
      const [kind, key, values] = line.split(' ');
      (kind === 'L' ? lemmas : exceptions).set(key!, values!.split(','));
    }
  }
  return { lemmas, exceptions };
}

/**
 * The same records, looked up by searching the text instead of parsing it: the index of the
 * other 115,000 noun lemmas would take tens of MB as Maps in an isolate that holds a model.
 */
export function searchLemmaIndex(text: string): LemmaIndex {
  const lookup = (kind: 'L' | 'E'): Lookup => ({
    get(key) {
      // Every record follows a newline (the file starts with a comment line).
      const needle = `\n${kind} ${key} `;
      const at = text.indexOf(needle);
      if (at < 0) return undefined;
      const from = at + needle.length;
      const end = text.indexOf('\n', from);
      return text.slice(from, end < 0 ? undefined : end).split(',');
    },
  });
  return { lemmas: lookup('L'), exceptions: lookup('E') };
}

/** What a query names: a synset id, or a lemma normalised as WordNet writes them. */
export function normalise(query: string): { id: string } | { lemma: string } {
  const q = query.trim();
  if (/^n\d{8}$/.test(q)) return { id: q };
  return { lemma: q.toLowerCase().replace(/\s+/g, '_') };
}

/** WordNet's morphy for nouns: the suffix rules, applied once each (`dogs` -> `dog`, `boxes` -> `box`). */
const SUFFIXES: Array<[string, string]> = [
  ['s', ''],
  ['ses', 's'],
  ['xes', 'x'],
  ['zes', 'z'],
  ['ches', 'ch'],
  ['shes', 'sh'],
  ['men', 'man'],
  ['ies', 'y'],
];

/** The forms to look a lemma up under, in order: itself, its noun.exc bases, then the suffix rules. */
export function baseForms(lemma: string, ...exceptions: Lookup[]): string[] {
  const forms = [lemma, ...exceptions.flatMap((e) => e.get(lemma) ?? [])];
  for (const [suffix, ending] of SUFFIXES) {
    if (lemma.length > suffix.length && lemma.endsWith(suffix)) forms.push(lemma.slice(0, -suffix.length) + ending);
  }
  return [...new Set(forms)];
}

export type Resolution =
  | { ok: true; concept: Concept }
  /** `senses`: the WordNet senses (ids) of the lemma and its base forms, none with a class under it. */
  | { ok: false; reason: 'not_a_concept' | 'no_concept_sense' | 'unknown'; senses: string[] };

/**
 * Resolves an id or a lemma. A lemma takes its most frequent sense (index.noun order) that
 * has ImageNet classes under it, trying the lemma itself before its base forms. `others`
 * holds the lemmas with no concept sense, to say what they are when they do not resolve.
 */
export function resolve(table: ConceptTable, query: string, others?: () => LemmaIndex): Resolution {
  const q = normalise(query);
  if ('id' in q) {
    const concept = table.concepts.get(q.id);
    return concept ? { ok: true, concept } : { ok: false, reason: 'not_a_concept', senses: [] };
  }
  for (const form of baseForms(q.lemma, table.exceptions)) {
    const first = table.lemmas.get(form)?.[0];
    if (first) return { ok: true, concept: table.concepts.get(`n${first}`)! };
  }
  // Only now the big index: the irregular plurals there have no concept lemma as base.
  const index = others?.();
  const forms = index ? baseForms(q.lemma, table.exceptions, index.exceptions) : [];
  const senses = [...new Set(forms.flatMap((form) => index?.lemmas.get(form) ?? []))].map((o) => `n${o}`);
  return { ok: false, reason: senses.length > 0 ? 'no_concept_sense' : 'unknown', senses };
}

/** A concept's score in an answer: what was scored (id, name, gloss) and how much. */
export interface ConceptScore {
  id: string;
  name: string;
  /** Echoed so that a caller who named the concept by lemma sees which sense was scored. */
  gloss: string;
  probability: number;
  /** How many ImageNet classes fall under it. */
  classes: number;
}

export function scoreConcept(c: Concept, probabilities: ArrayLike<number>): ConceptScore {
  return { id: c.id, name: c.name, gloss: c.gloss, probability: conceptProbability(c, probabilities), classes: c.classes.length };
}

/** The probability of a concept: the sum of its classes' probabilities (the classes are leaves). */
export function conceptProbability(concept: Concept, probabilities: ArrayLike<number>): number {
  let sum = 0;
  for (const i of concept.classes) sum += probabilities[i]!;
  return sum;
}
