import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConceptTable, resolve, type ConceptTable } from '../../../src/concepts/table';
import { canonicalJson, checkPolicy, policyHash, policyKey, type Policy } from '../../../src/policies/schema';
import { BUCKET } from '../upload';
import { parse, type Command } from './command';
import { ROOT } from '../paths';
import { run } from '../run';

const usage =
  'policy put <file.json> [--local|--remote] [--persist-to DIR] | policy check <file.json>   validate a moderation policy (and put it into R2 as policies/<name>.json)';

/**
 * Named policies are written here, never over HTTP: the policy is checked as the Worker checks
 * it (schema, and every concept resolving to one with ImageNet classes) and stored as its
 * canonical JSON, so the bucket holds what `policy.sha256` hashes.
 */
export const policyCommand: Command = {
  name: 'policy',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, usage, {
      local: { type: 'boolean', default: false },
      remote: { type: 'boolean', default: false },
      'persist-to': { type: 'string' },
    });
    const [action, file] = positionals;
    if ((action !== 'put' && action !== 'check') || !file) throw new Error(`usage: ${usage}`);
    if (values.local && values.remote) throw new Error('--local or --remote, not both');
    const policy = await readPolicy(file);
    const sha256 = await policyHash(policy);
    if (action === 'check') {
      console.log(`${policy.name}: valid (sha256 ${sha256})`);
      return;
    }
    const target = values.remote ? 'remote' : 'local';
    const dir = await mkdtemp(join(tmpdir(), 'edge-resnet-policy-'));
    try {
      const canonical = join(dir, `${policy.name}.json`);
      await writeFile(canonical, canonicalJson(policy));
      const persist = values['persist-to'] ? ['--persist-to', values['persist-to']] : [];
      await run('npx', ['wrangler', 'r2', 'object', 'put', `${BUCKET}/${policyKey(policy.name)}`, '--file', canonical, '--content-type', 'application/json', `--${target}`, ...persist]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    console.log(`${policy.name}: put into ${target} R2 as ${policyKey(policy.name)} (sha256 ${sha256})`);
  },
};

/** The policy in `file`, checked; every rule's concept must resolve. Prints what each resolved to. */
export async function readPolicy(file: string): Promise<Policy> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not a JSON file (${err instanceof Error ? err.message : String(err)})`);
  }
  const checked = checkPolicy(value);
  if (!checked.ok) throw new Error(`${file}: ${checked.message}`);
  const table = await conceptTable();
  for (const [i, rule] of checked.policy.rules.entries()) {
    const found = resolve(table, rule.concept);
    if (!found.ok) throw new Error(`${file}: policy.rules[${i}].concept: "${rule.concept}" is not a concept with ImageNet classes under it`);
    console.log(`  ${rule.action} at >= ${rule.threshold}: ${rule.concept} -> ${found.concept.id} (${found.concept.name}; ${found.concept.classes.length} classes)`);
  }
  return checked.policy;
}

async function conceptTable(): Promise<ConceptTable> {
  const [table, synsets] = await Promise.all([
    readFile(join(ROOT, 'src/concepts/wordnet-concepts.txt'), 'utf8'),
    readFile(join(ROOT, 'src/models/imagenet-synset.txt'), 'utf8'),
  ]);
  return parseConceptTable(table, synsets.split('\n').filter((l) => l.trim()).map((l) => l.slice(0, 9)));
}
