/** Policies inside workerd: the schema's 400s, the canonical hash, decisions on crafted probabilities, and named policies in local R2. */
import { beforeAll, describe, expect, it } from 'vitest';
import { findConcept } from '../../src/concepts';
import { imagenetClasses } from '../../src/models/labels';
import { decide, inlinePolicy, resolvePolicy, type ResolvedPolicy } from '../../src/policies';
import { canonicalJson, checkPolicy, policyHash, policyKey, type Policy } from '../../src/policies/schema';
import weapons from '../../examples/policies/weapons.json';
import { call, testEnv, type ErrorAnswer } from './helpers';

const sha256 = async (text: string) =>
  [...new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))].map((b) => b.toString(16).padStart(2, '0')).join('');

const index = (synset: string) => imagenetClasses().findIndex((c) => c.synset === synset);

describe('policy schema', () => {
  const message = (value: unknown) => {
    const checked = checkPolicy(value);
    expect(checked.ok).toBe(false);
    return checked.ok ? '' : checked.message;
  };
  const rule = { concept: 'weapon', threshold: 0.5, action: 'block' };

  it('accepts a policy', () => {
    expect(checkPolicy({ name: 'weapons-2', rules: [rule] })).toEqual({ ok: true, policy: { name: 'weapons-2', rules: [rule] } });
  });

  it('names the field of every fault', () => {
    expect(message({ name: 'Weapons!', rules: [rule] })).toMatch(/^invalid policy: policy\.name: must be 1 to 64 characters/);
    expect(message({ name: 'x'.repeat(65), rules: [rule] })).toMatch(/policy\.name/);
    expect(message({ name: 'w', rules: [{ ...rule, threshold: 1.5 }] })).toMatch(/policy\.rules\[0\]\.threshold: Too big/);
    expect(message({ name: 'w', rules: [rule, { ...rule, threshold: -0.1 }] })).toMatch(/policy\.rules\[1\]\.threshold: Too small/);
    expect(message({ name: 'w', rules: [{ ...rule, threshold: '0.5' }] })).toMatch(/policy\.rules\[0\]\.threshold: Invalid input: expected number/);
    expect(message({ name: 'w', rules: [{ ...rule, action: 'ban' }] })).toMatch(/policy\.rules\[0\]\.action: Invalid option/);
    expect(message({ name: 'w', rules: [{ ...rule, treshold: 0.5 }] })).toMatch(/policy\.rules\[0\]: Unrecognized key: "treshold"/);
    expect(message({ name: 'w', rules: [] })).toMatch(/policy\.rules: Too small/);
    expect(message({ name: 'w' })).toMatch(/policy\.rules: Invalid input/);
    expect(message('w')).toMatch(/^invalid policy: policy: Invalid input: expected object/);
    // Both faults at once.
    expect(message({ name: '', rules: [{ ...rule, concept: '' }] })).toMatch(/policy\.name: .*; policy\.rules\[0\]\.concept: /);
  });

  it('an unknown concept is a 400 naming the rule', async () => {
    await expect(inlinePolicy({ name: 'w', rules: [rule, { ...rule, concept: 'qwertyuiop' }] })).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/policy\.rules\[1\]\.concept: "qwertyuiop" is not a WordNet 3\.0 noun/),
    });
  });
});

describe('policy hash', () => {
  it('is the SHA-256 of the canonical JSON: keys sorted, no whitespace, whatever the order written', async () => {
    const policy: Policy = { rules: [{ threshold: 0.5, action: 'flag', concept: 'dog' }], name: 'p' } as unknown as Policy;
    const canonical = '{"name":"p","rules":[{"action":"flag","concept":"dog","threshold":0.5}]}';
    expect(canonicalJson(policy)).toBe(canonical);
    expect(await policyHash(policy)).toBe(await sha256(canonical));
    expect(await policyHash({ name: 'p', rules: [{ concept: 'dog', action: 'flag', threshold: 0.5 }] })).toBe(await sha256(canonical));
    expect(await policyHash({ name: 'p', rules: [{ concept: 'dog', action: 'flag', threshold: 0.51 }] })).not.toBe(await sha256(canonical));
  });
});

describe('decisions on crafted probabilities', () => {
  let policy: ResolvedPolicy;
  const revolver = index('n04086273');
  const rifle = index('n04090263');
  const tabby = index('n02123045');

  beforeAll(async () => {
    policy = await resolvePolicy({
      name: 'crafted',
      rules: [
        { concept: 'firearm', threshold: 0.3, action: 'block' },
        { concept: 'weapon', threshold: 0.15, action: 'flag' },
        { concept: 'n04565375', threshold: 0.5, action: 'block' },
        { concept: 'cat', threshold: 0.9, action: 'flag' },
      ],
    });
  });

  const probabilities = (entries: Array<[number, number]>) => {
    const p = new Float64Array(1000);
    for (const [i, v] of entries) p[i] = v;
    return p;
  };

  it('allows when no rule fires, and still scores every concept once', () => {
    const result = decide(policy, probabilities([[tabby, 0.5], [revolver, 0.1]]));
    expect(result.decision).toBe('allow');
    expect(result.triggered).toEqual([]);
    expect(result.concepts.map((c) => [c.id, c.classes])).toEqual([['n03343853', 3], ['n04565375', 7], ['n02121620', 7]]);
    expect(result.concepts.map((c) => c.probability)).toEqual([0.1, 0.1, 0.5]);
  });

  it('flags on a flag rule alone, summing the concept over its classes', () => {
    // 0.1 + 0.1 over two firearm classes: weapon 0.2 >= 0.15 flags, firearm 0.2 < 0.3 does not block.
    const result = decide(policy, probabilities([[revolver, 0.1], [rifle, 0.1]]));
    expect(result.decision).toBe('flag');
    expect(result.triggered).toEqual([{ concept: 'n04565375', name: 'weapon, arm, weapon system', probability: 0.2, threshold: 0.15, action: 'flag' }]);
  });

  it('blocks when a block rule fires too (the strictest wins), listing the fired rules in policy order', () => {
    const result = decide(policy, probabilities([[revolver, 0.2], [rifle, 0.1], [tabby, 0.95]]));
    expect(result.decision).toBe('block');
    expect(result.triggered.map((t) => [t.concept, t.action])).toEqual([['n03343853', 'block'], ['n04565375', 'flag'], ['n02121620', 'flag']]);
    expect(result.triggered[0]!.probability).toBeCloseTo(0.3, 15);
  });

  it('fires at probability equal to the threshold, and a threshold of 0 always fires', async () => {
    const exact = decide(policy, probabilities([[tabby, 0.9]]));
    expect(exact.decision).toBe('flag');
    const zero = await resolvePolicy({ name: 'z', rules: [{ concept: 'dog', threshold: 0, action: 'block' }] });
    expect(decide(zero, new Float64Array(1000))).toMatchObject({ decision: 'block', triggered: [{ concept: 'n02084071', probability: 0 }] });
  });

  it('dog sums its 118 classes', async () => {
    const dogPolicy = await resolvePolicy({ name: 'd', rules: [{ concept: 'dogs', threshold: 0.5, action: 'block' }] });
    const p = new Float64Array(1000);
    for (const i of findConcept('dog').classes) p[i] = 0.5 / 118;
    const result = decide(dogPolicy, p);
    expect(result.concepts[0]!.probability).toBeCloseTo(0.5, 12);
    expect(result.concepts[0]!.classes).toBe(118);
  });
});

describe('GET /policies, GET /policies/:name (named policies in local R2)', () => {
  let example: Policy;

  beforeAll(async () => {
    example = weapons as Policy;
    await testEnv.MODELS.put(policyKey('weapons'), JSON.stringify(example));
    await testEnv.MODELS.put(policyKey('dogs-only'), JSON.stringify({ name: 'dogs-only', rules: [{ concept: 'dog', threshold: 0.5, action: 'flag' }] }));
    await testEnv.MODELS.put(policyKey('broken'), JSON.stringify({ name: 'broken', rules: [{ concept: 'dog', threshold: 5, action: 'flag' }] }));
    await testEnv.MODELS.put('policies/notes.txt', 'not a policy');
  });

  it('lists the stored policies by name, sorted', async () => {
    const res = await call('/policies');
    expect(res.status).toBe(200);
    const { policies } = (await res.json()) as { policies: string[] };
    expect(policies).toEqual(expect.arrayContaining(['broken', 'dogs-only', 'weapons']));
    expect(policies).toEqual([...policies].sort());
    expect(policies).not.toContain('notes');
  });

  it('reads one with its sha256 and each rule resolved', async () => {
    const res = await call('/policies/weapons');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { name: string; sha256: string; rules: Array<{ concept: string; resolved: { id: string; name: string; classes: number } }> };
    expect(body.name).toBe('weapons');
    expect(body.sha256).toBe(await sha256(canonicalJson(example)));
    expect(body.rules).toHaveLength(example.rules.length);
    expect(body.rules[0]).toMatchObject({ ...example.rules[0], resolved: { id: 'n04565375', name: 'weapon, arm, weapon system', classes: 7 } });
    expect(body.rules[1]!.resolved).toMatchObject({ id: 'n03343853', classes: 3 });
  });

  it('404 for a missing policy, 400 for a malformed name, 500 naming the fault of a broken stored one', async () => {
    const error = async (res: Response, code: number, pattern: RegExp) => {
      expect(res.status).toBe(code);
      expect(((await res.json()) as ErrorAnswer).message).toMatch(pattern);
    };
    await error(await call('/policies/nothing-here'), 404, /no policy named "nothing-here"/);
    await error(await call('/policies/Bad_Name'), 400, /policy name "Bad_Name" must be/);
    await error(await call('/policies/broken'), 500, /stored policy "broken" is invalid: .*policy\.rules\[0\]\.threshold/);
  });
});
