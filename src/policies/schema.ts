/**
 * What a policy is: `{ name, rules: [{ concept, threshold, action }] }`, checked with zod 4.
 * Pure (no Worker imports): the models CLI validates policies with it before uploading them.
 */
import { z } from 'zod';

export const POLICY_NAME = /^[a-z0-9-]{1,64}$/;

export const RuleSchema = z.strictObject({
  /** A WordNet lemma (`weapon`) or noun synset id (`n04565375`) with ImageNet classes under it. */
  concept: z.string().trim().min(1).max(100),
  /** The rule fires when the concept's probability is >= this. */
  threshold: z.number().min(0).max(1),
  action: z.enum(['block', 'flag']),
});

export const PolicySchema = z.strictObject({
  name: z.string().regex(POLICY_NAME, 'must be 1 to 64 characters of a-z, 0-9 and -'),
  rules: z.array(RuleSchema).min(1).max(100),
});

export type Rule = z.infer<typeof RuleSchema>;
export type Policy = z.infer<typeof PolicySchema>;
export type Action = Rule['action'];

/**
 * The policy, or the reason it is not one, naming the field (`policy.rules[0].threshold: ...`).
 * Every issue is listed: a caller fixes a policy in one go.
 */
export function checkPolicy(value: unknown, where = 'policy'): { ok: true; policy: Policy } | { ok: false; message: string } {
  const result = PolicySchema.safeParse(value);
  if (result.success) return { ok: true, policy: result.data };
  const issues = result.error.issues.map((issue) => `${fieldPath(where, issue.path)}: ${issue.message}`);
  return { ok: false, message: `invalid policy: ${issues.join('; ')}` };
}

function fieldPath(root: string, path: readonly PropertyKey[]): string {
  return path.reduce<string>((at, key) => (typeof key === 'number' ? `${at}[${key}]` : `${at}.${String(key)}`), root);
}

/**
 * The canonical JSON that `policy.sha256` hashes: keys sorted, no whitespace, so the same policy
 * hashes the same however it was written.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Hex SHA-256 of the policy's canonical JSON (Web Crypto: the same in the Worker and in Node). */
export async function policyHash(policy: Policy): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canonicalJson(policy)));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Where a named policy lives in the MODELS bucket (written by `npm run models -- policy put`). */
export const POLICY_PREFIX = 'policies/';
export const policyKey = (name: string): string => `${POLICY_PREFIX}${name}.json`;
