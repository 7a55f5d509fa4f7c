/**
 * Concepts: any WordNet 3.0 noun synset with ImageNet classes under it, scored as the sum of
 * those classes' probabilities. Every ImageNet-1k class id is a WordNet noun offset, so the
 * hypernym hierarchy (wordnet-concepts.txt, see scripts/make-concepts.ts) gives `dog` (118
 * classes), `weapon` (7) and so on for free.
 */
import { badRequest, notFound } from '../errors';
import { imagenetClasses } from '../models/labels';
import tableText from './wordnet-concepts.txt';
import sensesText from './generated/noun-senses.txt';
import { parseConceptTable, resolve, scoreConcept, searchLemmaIndex, type Concept, type ConceptScore, type ConceptTable, type LemmaIndex } from './table';

export type { Concept, ConceptScore } from './table';


let table: ConceptTable | undefined;
let others: LemmaIndex | undefined;

/** Parsed on first use, not at start-up (Workers bill start-up time). */
export function conceptTable(): ConceptTable {
  table ??= parseConceptTable(tableText, imagenetClasses().map((c) => c.synset));
  return table;
}

/** The 115,000 lemmas with no concept sense: searched only to explain a lemma that did not resolve. */
const otherLemmas = (): LemmaIndex => (others ??= searchLemmaIndex(sensesText));

/** The concept a query (id or lemma) names, or a 404 that says why not. */
export function findConcept(query: string): Concept {
  const q = query.trim();
  if (q === '') throw badRequest('empty concept: give a WordNet lemma (dog) or noun synset id (n02084071)');
  if (q.length > 100) throw badRequest(`concept "${q.slice(0, 20)}..." is too long`);
  const found = resolve(conceptTable(), q, otherLemmas);
  if (found.ok) return found.concept;
  switch (found.reason) {
    case 'not_a_concept':
      throw notFound(`${q} is not a concept: no ImageNet class is under it (or it is no WordNet 3.0 noun synset)`);
    case 'no_concept_sense':
      throw notFound(
        `"${q}" has no WordNet 3.0 noun sense with ImageNet classes under it; its senses: ${found.senses.join(', ')}`,
      );
    case 'unknown':
      throw notFound(`"${q}" is not a WordNet 3.0 noun`);
  }
}

/** Most concepts one request may score: each costs a pass over its classes. */
export const MAX_CONCEPTS = 50;

/** `dog,n04565375` -> the concepts, resolved (404 for any that is not one), duplicates kept once. */
export function parseConceptList(raw: string): Concept[] {
  const queries = raw.split(',').map((q) => q.trim());
  if (queries.length > MAX_CONCEPTS) throw badRequest(`too many concepts: ${queries.length}, the limit is ${MAX_CONCEPTS}`);
  const concepts = new Map<string, Concept>();
  for (const q of queries) {
    const concept = findConcept(q);
    concepts.set(concept.id, concept);
  }
  return [...concepts.values()];
}

/** Pure: concepts scored on one image's 1000 probabilities (model output order). */
export function scoreConcepts(concepts: readonly Concept[], probabilities: ArrayLike<number>): ConceptScore[] {
  return concepts.map((c) => scoreConcept(c, probabilities));
}

/** How `GET /concepts` describes a concept. */
export function describeConcept(c: Concept) {
  const classes = imagenetClasses();
  return { id: c.id, name: c.name, lemmas: c.lemmas, gloss: c.gloss, classes: c.classes.length, classIds: c.classes.map((i) => classes[i]!.synset) };
}
