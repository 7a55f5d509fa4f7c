import { modelUnavailable } from '../errors';
import type { ModelManifest } from './manifest';

/**
 * Parses manifest.json and checks the fields the Worker relies on. A bad manifest is an
 * operator problem: the model is reported unavailable (503) with the field that is wrong.
 */
export function parseManifest(id: string, text: string): ModelManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw modelUnavailable(`model ${id}: manifest.json is not valid JSON`);
  }
  const problem = check(value, id);
  if (problem) throw modelUnavailable(`model ${id}: manifest.json ${problem}`);
  return value as ModelManifest;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPositiveInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;
const isTriple = (v: unknown): boolean =>
  Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));

function check(m: unknown, id: string): string | undefined {
  if (!isObject(m)) return 'is not an object';
  if (m.id !== id) return `has id ${JSON.stringify(m.id)}`;
  if (m.weights !== 'real' && m.weights !== 'synthetic') return 'has no weights kind (real|synthetic)';
  if (!['fp32', 'int8-qdq', 'int8-qoperator'].includes(m.precision as string)) return 'has an unknown precision';
  if (typeof m.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(m.sha256)) return 'has no sha256';
  if (!isPositiveInt(m.bytes)) return 'has no byte size';
  if (m.labels !== 'imagenet-1k') return 'has an unknown label set';
  const input = m.input;
  if (!isObject(input) || typeof input.name !== 'string' || !Array.isArray(input.shape) || input.shape.length !== 4) {
    return 'has no NCHW input';
  }
  const output = m.output;
  if (!isObject(output) || typeof output.name !== 'string' || !Array.isArray(output.shape) || output.shape[1] !== 1000) {
    return 'has no [N, 1000] output';
  }
  const p = m.preprocess;
  if (!isObject(p)) return 'has no preprocess';
  if (![p.resizeShorter, p.cropHeight, p.cropWidth].every(isPositiveInt)) return 'has bad preprocess sizes';
  if (!isTriple(p.mean) || !isTriple(p.std) || (p.std as number[]).some((s) => s <= 0)) return 'has bad mean/std';
  if (input.shape[2] !== p.cropHeight || input.shape[3] !== p.cropWidth || input.shape[1] !== 3) {
    return 'has an input shape that does not match its crop';
  }
  if ((p.cropHeight as number) > (p.resizeShorter as number) || (p.cropWidth as number) > (p.resizeShorter as number)) {
    return 'crops more than it resizes to';
  }
  if (m.session !== undefined && (!isObject(m.session) || !['undefined', 'boolean'].includes(typeof m.session.disablePrepacking))) {
    return 'has bad session settings';
  }
  if (m.stages !== undefined) return checkStages(m.stages, input.name as string, output.name as string);
  return undefined;
}

/** A split model's stages must chain: model input -> stage 0 -> ... -> last stage -> model output. */
function checkStages(stages: unknown, input: string, output: string): string | undefined {
  if (!Array.isArray(stages) || stages.length < 2) return 'has stages that are not a list of two or more';
  for (const [k, s] of stages.entries()) {
    if (!isObject(s) || typeof s.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(s.sha256) || !isPositiveInt(s.bytes)) {
      return `has no sha256 or size for stage ${k}`;
    }
    if (!isTensorSpec(s.input) || !isTensorSpec(s.output)) return `has bad tensors for stage ${k}`;
    const expected = k === 0 ? input : (stages[k - 1] as { output: { name: string } }).output.name;
    if (s.input.name !== expected) return `has stage ${k} reading ${s.input.name}, not ${expected}`;
    if (s.session !== undefined && (!isObject(s.session) || !['undefined', 'boolean'].includes(typeof s.session.disablePrepacking))) {
      return `has bad session settings for stage ${k}`;
    }
  }
  const last = stages.at(-1) as { output: { name: string } };
  return last.output.name === output ? undefined : `has a last stage giving ${last.output.name}, not ${output}`;
}

const isTensorSpec = (v: unknown): v is { name: string; type: string; shape: unknown[] } =>
  isObject(v) &&
  typeof v.name === 'string' &&
  (v.type === 'float32' || v.type === 'uint8') &&
  Array.isArray(v.shape) &&
  v.shape.length > 0 &&
  v.shape.every((d) => typeof d === 'string' || isPositiveInt(d));
