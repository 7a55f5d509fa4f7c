/**
 * The inference response: the model's output as FP32 probabilities [N, 1000], or with Triton's
 * classification extension the top K as BYTES "<value>:<index>:<label>", each output in JSON
 * `data` or, with the binary tensor data extension, as raw bytes after the JSON object.
 */
import { SYNTHETIC_NOTICE } from '../../answers';
import { badRequest } from '../../errors';
import type { ModelManifest } from '../../models/manifest';
import type { Classification } from '../../pipeline/classify';
import { HEADER_LENGTH, type InferRequest, type Params } from './request';

/** An output as the request asks for it. */
export interface OutputRequest {
  name: string;
  binary: boolean;
  /** Top K as classification strings instead of the whole tensor. */
  classification?: number;
}

/**
 * The outputs to answer: those requested, or without `outputs` every output of the model (it
 * has one). `binary_data_output` in the request's parameters makes binary the default.
 */
export function requestedOutputs(request: InferRequest, manifest: ModelManifest): OutputRequest[] {
  const binaryDefault = flag(request.parameters, 'binary_data_output', 'request parameters') ?? false;
  if (!request.outputs) return [{ name: manifest.output.name, binary: binaryDefault }];
  const seen = new Set<string>();
  return request.outputs.map(({ name, parameters }) => {
    if (name !== manifest.output.name) throw badRequest(`unknown output "${name.slice(0, 64)}": model ${manifest.id} has output "${manifest.output.name}"`);
    if (seen.has(name)) throw badRequest(`output "${name}" is requested twice`);
    seen.add(name);
    const k = parameters?.classification;
    if (k !== undefined && k !== null && (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > manifest.output.shape[1])) {
      throw badRequest(`output "${name}": parameters.classification must be an integer from 1 to ${manifest.output.shape[1]}`);
    }
    return { name, binary: flag(parameters, 'binary_data', `output "${name}" parameters`) ?? binaryDefault, ...(typeof k === 'number' ? { classification: k } : {}) };
  });
}

function flag(parameters: Params | undefined, key: string, where: string): boolean | undefined {
  const value = parameters?.[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw badRequest(`${where}: ${key} must be a boolean`);
  return value;
}

interface ResponseOutput {
  name: string;
  datatype: 'FP32' | 'BYTES';
  shape: number[];
  parameters?: { binary_data_size: number };
  data?: number[] | string[];
}

/** The response body and its headers; `version` is the model version the metadata reports. */
export function inferResponse(result: Classification, request: InferRequest, outputs: OutputRequest[], version: string): { body: Uint8Array; headers: Record<string, string> } {
  const { manifest, images } = result;
  const binaries: Uint8Array[] = [];
  const body = {
    model_name: manifest.id,
    model_version: version,
    ...(request.id !== undefined ? { id: request.id } : {}),
    // The synthetic-weights notice, where a v2 client can see it (also in the headers).
    parameters: { weights: manifest.weights, ...(manifest.weights === 'synthetic' ? { notice: SYNTHETIC_NOTICE } : {}) },
    outputs: outputs.map((output): ResponseOutput => {
      const tensor = output.classification ? classification(result, output.classification) : probabilities(result);
      const shape = [images.length, output.classification ?? manifest.output.shape[1]];
      const head = { name: output.name, datatype: tensor.datatype, shape };
      if (!output.binary) return { ...head, data: tensor.json() };
      const bytes = tensor.binary();
      binaries.push(bytes);
      return { ...head, parameters: { binary_data_size: bytes.length } };
    }),
  };
  const json = new TextEncoder().encode(JSON.stringify(body));
  if (binaries.length === 0) return { body: json, headers: { 'Content-Type': 'application/json' } };
  const all = new Uint8Array(json.length + binaries.reduce((a, b) => a + b.length, 0));
  all.set(json);
  binaries.reduce((at, b) => (all.set(b, at), at + b.length), json.length);
  return { body: all, headers: { 'Content-Type': 'application/octet-stream', [HEADER_LENGTH]: String(json.length) } };
}

interface Encodable {
  datatype: 'FP32' | 'BYTES';
  json: () => number[] | string[];
  binary: () => Uint8Array;
}

/** Every image's probabilities, row after row, as float32 (the datatype the output declares). */
function probabilities({ images }: Classification): Encodable {
  const width = images[0]?.probabilities.length ?? 0;
  const values = new Float32Array(images.length * width);
  images.forEach((image, i) => values.set(image.probabilities, i * width));
  return { datatype: 'FP32', json: () => Array.from(values), binary: () => new Uint8Array(values.buffer) };
}

/**
 * The top `k` of each image, best first, as Triton's classification extension writes them:
 * "<value>:<index>:<label>", the value being the FP32 output's own.
 */
function classification({ images }: Classification, k: number): Encodable {
  const strings = images.flatMap((image) => image.predictions.slice(0, k).map((p) => `${Math.fround(p.probability)}:${p.index}:${p.label}`));
  return { datatype: 'BYTES', json: () => strings, binary: () => bytesTensor(strings) };
}

/** BYTES in binary form: each element a 4-byte little-endian length, then its bytes. */
export function bytesTensor(elements: ReadonlyArray<string | Uint8Array>): Uint8Array {
  const encoded = elements.map((e) => (typeof e === 'string' ? new TextEncoder().encode(e) : e));
  const out = new Uint8Array(encoded.reduce((a, e) => a + 4 + e.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const e of encoded) {
    view.setUint32(at, e.length, true);
    out.set(e, at + 4);
    at += 4 + e.length;
  }
  return out;
}
