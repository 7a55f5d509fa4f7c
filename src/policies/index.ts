/**
 * Policies: named ones from the MODELS bucket (`policies/<name>.json`, written by the models
 * CLI, never over HTTP) or inline ones from the request, validated and their concepts resolved.
 */
import { findConcept } from '../concepts';
import { ApiError, badRequest, notFound } from '../errors';
import type { ResolvedPolicy } from './decide';
import { checkPolicy, policyHash, policyKey, POLICY_NAME, POLICY_PREFIX, type Policy } from './schema';

export { decide, type Decision, type ImageDecision, type ResolvedPolicy } from './decide';
export type { Policy } from './schema';

/** Names of the stored policies, sorted. */
export async function listPolicies(bucket: R2Bucket): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: POLICY_PREFIX, ...(cursor ? { cursor } : {}) });
    for (const object of page.objects) {
      const name = object.key.slice(POLICY_PREFIX.length).replace(/\.json$/, '');
      if (object.key.endsWith('.json') && POLICY_NAME.test(name)) names.push(name);
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return names.sort();
}

/** A stored policy, validated and resolved: 400 for a malformed name, 404 when there is none. */
export async function loadPolicy(bucket: R2Bucket, name: string): Promise<ResolvedPolicy> {
  if (!POLICY_NAME.test(name)) throw badRequest(`policy name "${name.slice(0, 70)}" must be 1 to 64 characters of a-z, 0-9 and -`);
  const object = await bucket.get(policyKey(name));
  if (!object) throw notFound(`no policy named "${name}"`);
  // The CLI validates before it uploads: a stored policy that fails here was put there by hand.
  const broken = (why: string) => new ApiError('internal', `stored policy "${name}" is invalid: ${why}`);
  let value: unknown;
  try {
    value = JSON.parse(await object.text());
  } catch {
    throw broken('not JSON');
  }
  const checked = checkPolicy(value);
  if (!checked.ok) throw broken(checked.message);
  if (checked.policy.name !== name) throw broken(`its name is "${checked.policy.name}"`);
  try {
    return await resolvePolicy(checked.policy);
  } catch (err) {
    throw err instanceof ApiError ? broken(err.message) : err;
  }
}

/** An inline policy from a request: any fault is a 400 naming the field. */
export async function inlinePolicy(value: unknown): Promise<ResolvedPolicy> {
  const checked = checkPolicy(value);
  if (!checked.ok) throw badRequest(checked.message);
  return resolvePolicy(checked.policy);
}

/** Resolves every rule's concept; an unknown one is a 400 that names the rule. */
export async function resolvePolicy(policy: Policy): Promise<ResolvedPolicy> {
  const rules = policy.rules.map((rule, i) => {
    try {
      return { concept: findConcept(rule.concept), threshold: rule.threshold, action: rule.action };
    } catch (err) {
      if (err instanceof ApiError) throw badRequest(`invalid policy: policy.rules[${i}].concept: ${err.message}`);
      throw err;
    }
  });
  return { policy, sha256: await policyHash(policy), rules };
}
