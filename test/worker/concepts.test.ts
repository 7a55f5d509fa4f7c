/** Concepts inside workerd: resolution, GET /concepts and POST /predict?concepts=, sums checked against the classes. */
import { beforeAll, describe, expect, it } from 'vitest';
import { findConcept, parseConceptList, scoreConcepts } from '../../src/concepts';
import { imagenetClasses } from '../../src/models/labels';
import { call, fixture, form, seedModel, type ErrorAnswer, type NativeAnswer } from './helpers';

interface ConceptAnswer {
  id: string;
  name: string;
  lemmas: string[];
  gloss: string;
  classes: number;
  classIds: string[];
}

type WithConcepts = NativeAnswer & { images: Array<NativeAnswer['images'][number] & { concepts: Array<{ id: string; name: string; gloss: string; probability: number; classes: number }> }> };

let cat: Uint8Array;

beforeAll(async () => {
  await seedModel('resnet18v1');
  cat = await fixture('test/fixtures/photos/chelsea.jpg');
});

const getConcept = async (q: string) => call(`/concepts?q=${encodeURIComponent(q)}`);

async function expectError(res: Response, code: number, type: string, message?: RegExp): Promise<ErrorAnswer> {
  expect(res.status).toBe(code);
  const body = (await res.json()) as ErrorAnswer;
  expect(body).toMatchObject({ code, type });
  if (message) expect(body.message).toMatch(message);
  return body;
}

describe('concept resolution (WordNet 3.0 counts)', () => {
  it('dog is n02084071 with 118 classes, cat is n02121620 (cat, true cat) with 7, weapon n04565375 with 7', () => {
    expect(findConcept('dog')).toMatchObject({ id: 'n02084071', classes: expect.any(Array) });
    expect(findConcept('dog').classes).toHaveLength(118);
    expect(findConcept('cat')).toMatchObject({ id: 'n02121620', name: 'cat, true cat' });
    expect(findConcept('cat').classes).toHaveLength(7);
    expect(findConcept('weapon').id).toBe('n04565375');
    expect(findConcept('n04565375').classes).toHaveLength(7);
  });

  it('is case-insensitive, takes spaces for _, and plurals', () => {
    expect(findConcept('  Egyptian Cat ').id).toBe('n02124075');
    expect(findConcept('DOGS').id).toBe('n02084071');
    expect(findConcept('wolves').id).toBe(findConcept('wolf').id);
  });

  it('a class is its own concept, with exactly itself under it', () => {
    const classes = imagenetClasses();
    for (const i of [0, 285, 999]) expect(findConcept(classes[i]!.synset).classes).toEqual([i]);
  });

  it('scores a concept as the sum of its classes, from any probabilities', () => {
    const probabilities = new Float64Array(1000);
    const dog = findConcept('dog');
    dog.classes.forEach((i, k) => (probabilities[i] = (k + 1) / 100_000));
    probabilities[findConcept('revolver').classes[0]!] = 0.25;
    const [d, w] = scoreConcepts(parseConceptList('dog,weapon'), probabilities);
    expect(d).toMatchObject({ id: 'n02084071', classes: 118 });
    expect(d!.probability).toBeCloseTo((118 * 119) / 2 / 100_000, 12);
    expect(w).toMatchObject({ id: 'n04565375', probability: 0.25, classes: 7 });
  });
});

describe('GET /concepts', () => {
  it('answers id, lemmas, gloss and the ImageNet classes under a lemma', async () => {
    const res = await getConcept('dog');
    expect(res.status).toBe(200);
    const body = (await res.json()) as ConceptAnswer;
    expect(body).toMatchObject({ id: 'n02084071', lemmas: ['dog', 'domestic_dog', 'Canis_familiaris'], classes: 118 });
    expect(body.gloss).toMatch(/genus Canis/);
    expect(body.classIds).toHaveLength(118);
    const ids = new Set(imagenetClasses().map((c) => c.synset));
    for (const id of body.classIds) expect(ids.has(id)).toBe(true);
    // The same concept by id.
    expect(await (await getConcept('n02084071')).json()).toEqual(body);
    // Chelsea's class is a cat, not a dog.
    expect(body.classIds).not.toContain('n02124075');
  });

  it('404 for an id that is not a concept, a lemma with no concept sense (listing its senses) and a non-noun', async () => {
    await expectError(await getConcept('n00000000'), 404, 'not_found', /n00000000 is not a concept/);
    await expectError(await getConcept('happiness'), 404, 'not_found', /happiness.*no WordNet 3\.0 noun sense.*n13987423, n07526757/);
    await expectError(await getConcept('nudity'), 404, 'not_found', /n14456138/);
    await expectError(await getConcept('qwertyuiop'), 404, 'not_found', /not a WordNet 3\.0 noun/);
  });

  it('400 without q', async () => {
    await expectError(await call('/concepts'), 400, 'bad_request', /GET \/concepts\?q=/);
    await expectError(await getConcept(' '), 400, 'bad_request');
  });
});

describe('POST /predict?concepts=', () => {
  it('adds each concept to each image, its probability the sum of its classes in the full answer', async () => {
    const res = await call('/predict?topk=1000&concepts=dog,n04565375,cat,dog', { method: 'POST', body: form(cat) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as WithConcepts;
    const [image] = body.images;
    expect(image!.predictions).toHaveLength(1000);
    // dog twice is scored once.
    expect(image!.concepts.map((c) => [c.id, c.classes])).toEqual([['n02084071', 118], ['n04565375', 7], ['n02121620', 7]]);
    for (const concept of image!.concepts) {
      const { classIds, gloss } = (await (await getConcept(concept.id)).json()) as ConceptAnswer;
      // The gloss says which sense was scored (cat: the feline, not the guy).
      expect(concept.gloss).toBe(gloss);
      const under = new Set(classIds);
      const sum = image!.predictions.filter((p) => under.has(p.synset)).reduce((a, p) => a + p.probability, 0);
      expect(concept.probability).toBeCloseTo(sum, 10);
      expect(concept.probability).toBeGreaterThan(0);
    }
  });

  it('404 for an unknown concept and 400 for an empty one, before any image is read', async () => {
    await expectError(await call('/predict?concepts=dog,qwertyuiop', { method: 'POST', body: form(cat) }), 404, 'not_found', /qwertyuiop/);
    await expectError(await call('/predict?concepts=', { method: 'POST', body: new Uint8Array(0) }), 400, 'bad_request', /empty concept/);
    const many = Array.from({ length: 51 }, () => 'dog').join(',');
    await expectError(await call(`/predict?concepts=${many}`, { method: 'POST', body: new Uint8Array(0) }), 400, 'bad_request', /too many concepts: 51, the limit is 50/);
  });
});
