/**
 * Reading an Open Inference Protocol (KServe v2) inference request: the JSON object, and with
 * Triton's binary tensor data extension the raw tensor bytes after it. Only what the protocol
 * says is read; what it leaves to the server (which inputs a model takes) is checked by the route.
 */
import type { z } from 'zod';
import { badRequest } from '../../errors';
import {
  V2InferenceRequestSchema as InferenceRequest,
  V2ParametersSchema as Parameters,
  V2RequestInputSchema as RequestInput,
  V2RequestOutputSchema as RequestOutput,
} from '../../openapi';

/** `Inference-Header-Content-Length`: the JSON part's length when binary tensor data follows it. */
export const HEADER_LENGTH = 'Inference-Header-Content-Length';

export type Params = z.infer<typeof Parameters>;
export type RequestInput = z.infer<typeof RequestInput>;
export type RequestOutput = z.infer<typeof RequestOutput>;

/** An input with its data: `raw` for binary data, `data` (JSON) otherwise. */
export type ReadInput = RequestInput & { raw?: Uint8Array };
export type InferRequest = Omit<z.infer<typeof InferenceRequest>, 'inputs'> & { inputs: ReadInput[] };

/**
 * Splits `body` into the JSON object and each binary input's bytes. Without the header the
 * whole body is JSON, and no input may claim binary data.
 */
export function readRequest(body: Uint8Array, headerLength: string | undefined): InferRequest {
  let jsonLength = body.length;
  if (headerLength !== undefined) {
    if (!/^\d{1,15}$/.test(headerLength.trim()) || Number(headerLength) > body.length || Number(headerLength) === 0) {
      throw badRequest(`${HEADER_LENGTH} must be the length of the JSON part, from 1 to the body's ${body.length} bytes; got "${headerLength.slice(0, 20)}"`);
    }
    jsonLength = Number(headerLength);
  }
  const request = parseJson(body.subarray(0, jsonLength));

  let offset = jsonLength;
  const inputs = request.inputs.map((input): ReadInput => {
    const size = input.parameters?.binary_data_size;
    if (size === undefined || size === null) {
      if (input.data === undefined) throw badRequest(`input "${input.name}" has no data (neither "data" nor parameters.binary_data_size)`);
      return input;
    }
    if (headerLength === undefined) throw badRequest(`input "${input.name}" has binary_data_size but the request has no ${HEADER_LENGTH} header`);
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) throw badRequest(`input "${input.name}": binary_data_size must be a non-negative integer`);
    if (input.data !== undefined) throw badRequest(`input "${input.name}" has both "data" and binary_data_size`);
    if (offset + size > body.length) {
      throw badRequest(`input "${input.name}": binary_data_size ${size} runs past the body (${body.length - offset} bytes of binary data left)`);
    }
    const raw = body.subarray(offset, offset + size);
    offset += size;
    return { ...input, raw };
  });
  if (offset !== body.length) {
    throw badRequest(`${body.length - offset} bytes after the JSON part are claimed by no input's binary_data_size`);
  }
  return { ...request, inputs };
}

function parseJson(bytes: Uint8Array): z.infer<typeof InferenceRequest> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw badRequest('the inference request is not valid JSON (with binary data, check Inference-Header-Content-Length)');
  }
  const result = InferenceRequest.safeParse(value);
  if (!result.success) {
    const issues = result.error.issues.slice(0, 3).map((issue) => `${issue.path.join('.') || 'request'}: ${issue.message}`);
    throw badRequest(`invalid inference request: ${issues.join('; ')}`);
  }
  return result.data;
}

/** Elements in a tensor of `shape`. */
export const elements = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * A BYTES tensor's elements. Binary: each a 4-byte little-endian length and that many bytes
 * (the extension's layout). JSON: the protocol's BYTES are strings; an image is not text, so
 * here each string is the image's base64.
 */
export function bytesElements(input: ReadInput): Uint8Array[] {
  if (input.raw) {
    const raw = input.raw;
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out: Uint8Array[] = [];
    for (let at = 0; at < raw.length; ) {
      if (at + 4 > raw.length) throw badRequest(`input "${input.name}": BYTES element ${out.length} has a truncated length prefix`);
      const length = view.getUint32(at, true);
      if (at + 4 + length > raw.length) {
        throw badRequest(`input "${input.name}": BYTES element ${out.length} claims ${length} bytes, ${raw.length - at - 4} are left`);
      }
      out.push(raw.subarray(at + 4, at + 4 + length));
      at += 4 + length;
    }
    return out;
  }
  return flatten(input.data, input.name).map((value, i) => {
    if (typeof value !== 'string') throw badRequest(`input "${input.name}": BYTES element ${i} must be a base64 string`);
    return fromBase64(value, `input "${input.name}": BYTES element ${i}`);
  });
}

/** An FP32 tensor's values: little-endian floats, or JSON numbers (flat or nested, row-major). */
export function fp32Values(input: ReadInput, count: number): Float32Array {
  if (input.raw) {
    if (input.raw.length !== count * 4) {
      throw badRequest(`input "${input.name}": binary_data_size is ${input.raw.length} bytes, shape [${input.shape.join(',')}] of FP32 needs ${count * 4}`);
    }
    // A copy: the binary part need not be 4-byte aligned in the body.
    const values = new Float32Array(input.raw.slice().buffer);
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!)) throw badRequest(`input "${input.name}": value ${i} is not a finite number`);
    }
    return values;
  }
  const flat = flatten(input.data, input.name);
  if (flat.length !== count) throw badRequest(`input "${input.name}" has ${flat.length} values, shape [${input.shape.join(',')}] needs ${count}`);
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const v = flat[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`input "${input.name}": value ${i} is not a finite number`);
    values[i] = v;
  }
  return values;
}

/** The protocol allows tensor data flat or nested (row-major); nesting carries no meaning here. */
function flatten(data: unknown, name: string): unknown[] {
  if (!Array.isArray(data)) throw badRequest(`input "${name}": "data" must be an array`);
  return (data as unknown[]).flat(Infinity) as unknown[];
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function fromBase64(text: string, what: string): Uint8Array {
  const clean = text.replace(/\s+/g, '');
  if (!BASE64.test(clean) || clean.length % 4 === 1) throw badRequest(`${what} is not base64`);
  let binary: string;
  try {
    binary = atob(clean);
  } catch {
    throw badRequest(`${what} is not base64`);
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
