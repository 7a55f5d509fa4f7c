/**
 * Decisions: pure functions of a policy (its concepts resolved) and one image's 1000 class
 * probabilities, so they can be computed again from cached probabilities.
 */
import { scoreConcept, type Concept, type ConceptScore } from '../concepts/table';
import type { Action, Policy } from './schema';

export type Decision = 'allow' | Action;

/** A policy whose rules name resolved concepts. */
export interface ResolvedPolicy {
  policy: Policy;
  sha256: string;
  rules: Array<{ concept: Concept; threshold: number; action: Action }>;
}

export interface Triggered {
  /** The resolved concept id (the rule may have named it by lemma). */
  concept: string;
  name: string;
  probability: number;
  threshold: number;
  action: Action;
}

export interface ImageDecision {
  decision: Decision;
  /** The rules that fired, in policy order. */
  triggered: Triggered[];
  /** Every concept the policy names, scored once each, in policy order. */
  concepts: ConceptScore[];
}

const STRICTNESS: Record<Decision, number> = { allow: 0, flag: 1, block: 2 };

/** The strictest action among the rules that fired (probability >= threshold); `allow` when none did. */
export function decide(policy: ResolvedPolicy, probabilities: ArrayLike<number>): ImageDecision {
  const scores = new Map<string, ConceptScore>();
  for (const { concept } of policy.rules) {
    if (!scores.has(concept.id)) scores.set(concept.id, scoreConcept(concept, probabilities));
  }
  const triggered: Triggered[] = [];
  let decision: Decision = 'allow';
  for (const { concept, threshold, action } of policy.rules) {
    const probability = scores.get(concept.id)!.probability;
    if (probability < threshold) continue;
    triggered.push({ concept: concept.id, name: concept.name, probability, threshold, action });
    if (STRICTNESS[action] > STRICTNESS[decision]) decision = action;
  }
  return { decision, triggered, concepts: [...scores.values()] };
}
