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
  return undefined;
}
