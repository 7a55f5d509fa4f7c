/**
 * The stage wire format (src/stages/wire.ts readTensor): hostile X-Tensor-Type and
 * X-Tensor-Dims headers and bodies of the right, nearly right and wrong sizes, on requests (the
 * stage side) and responses (the caller's side). A tensor comes back only when it is exactly
 * what the spec asks for; anything else is a 400.
 *
 * The input file is one JSON line (spec, batch limit, headers, request or response) then the body.
 */
import fc from 'fast-check';
import type { TensorSpec } from '../../../src/models/manifest';
import { DIMS_HEADER, readTensor, TYPE_HEADER } from '../../../src/stages/wire';
import { concat, genericOp, Violation, type Case, type Op, type Target } from '../harness';

const SPECS: TensorSpec[] = [
  { name: 'x', type: 'float32', shape: ['N', 8, 4, 4] },
  { name: 'pixels', type: 'uint8', shape: ['batch', 3, 5] },
  { name: 'logits', type: 'float32', shape: [1, 10] },
  { name: 'y', type: 'float32', shape: ['N', 'C', 2] },
];

interface Meta {
  spec: number;
  maxBatch: number;
  type: string | null;
  dims: string | null;
  response: boolean;
}

/** Header values a Request may carry (visible ASCII and inner spaces; Headers trims the ends). */
const headerText = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });

const dimsOf = (spec: TensorSpec, batch: number, symbolic: number): number[] =>
  spec.shape.map((d, i) => (typeof d === 'number' ? d : i === 0 ? batch : symbolic));

const cases: fc.Arbitrary<Case> = fc
  .record({
    spec: fc.nat({ max: SPECS.length - 1 }),
    maxBatch: fc.integer({ min: 1, max: 8 }),
    batch: fc.oneof(fc.integer({ min: 1, max: 9 }), fc.constantFrom(0, -1, 2 ** 53, 1e21, 4294967297)),
    symbolic: fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constantFrom(0, 2 ** 31, 2 ** 40)),
    type: fc.oneof({ weight: 3, arbitrary: fc.constant('spec') }, fc.constantFrom('float32', 'uint8', 'int64', 'Float32', ' float32', '', null), headerText),
    dims: fc.oneof(
      fc.constant('valid'),
      fc.constant('valid'),
      fc.constantFrom('', ',', '1,,4,4', ' 1,8,4,4', '1, 8, 4, 4', '0x1,8,4,4', '1e0,8,4,4', '1.0,8,4,4', '-1,8,4,4', 'NaN,8,4,4', 'Infinity,8,4,4', '1,8,4,4,', '9007199254740993,8,4,4', null),
      headerText,
    ),
    body: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: -5, max: 5 }), fc.constantFrom('empty', 'huge')),
    response: fc.boolean(),
    ops: fc.oneof(fc.constant<Op[]>([]), fc.array(genericOp, { maxLength: 2 })),
  })
  .map(({ spec, maxBatch, batch, symbolic, type: typeChoice, dims, body, response, ops }) => {
    let type = typeChoice;
    const s = SPECS[spec]!;
    const dimList = dimsOf(s, batch, symbolic);
    const dimsText = dims === 'valid' ? dimList.join(',') : dims;
    if (type === 'spec') type = s.type;
    const elements = dimList.reduce((a, b) => a * b, 1);
    const right = Number.isSafeInteger(elements) && elements >= 0 && elements < 2 ** 22 ? elements * (s.type === 'float32' ? 4 : 1) : 64;
    const n = body === 'empty' ? 0 : body === 'huge' ? 1 << 20 : Math.max(0, right + body);
    let data: Uint8Array = new Uint8Array(n).map((_, i) => (i * 37) & 0xff);
    for (const o of ops) data = o.apply(data, [data]);
    const meta: Meta = { spec, maxBatch, type, dims: dimsText, response };
    const how = `wire: ${JSON.stringify(meta)} body ${data.length} bytes${ops.length ? ` | ${ops.map((o) => o.what).join(' | ')}` : ''}`;
    return { bytes: concat(new TextEncoder().encode(`${JSON.stringify(meta)}\n`), data), how };
  });

export const wire: Target = {
  name: 'wire',
  arbitrary: cases,
  async check(input) {
    const nl = input.indexOf(10);
    const meta = JSON.parse(new TextDecoder().decode(input.subarray(0, nl))) as Meta;
    const body = input.slice(nl + 1);
    const spec = SPECS[meta.spec]!;
    const headers = new Headers();
    if (meta.type !== null) headers.set(TYPE_HEADER, meta.type);
    if (meta.dims !== null) headers.set(DIMS_HEADER, meta.dims);
    const message = meta.response ? new Response(body, { headers }) : new Request('http://stage/run', { method: 'POST', headers, body });
    const t = await readTensor(message, spec, meta.maxBatch);
    const bad = (why: string) => new Violation(`readTensor accepted ${meta.type} [${meta.dims}] with ${body.length} bytes: ${why}`);
    if (t.type !== spec.type) throw bad(`type ${t.type}`);
    if (t.dims.length !== spec.shape.length) throw bad(`rank ${t.dims.length}`);
    t.dims.forEach((d, i) => {
      if (!Number.isSafeInteger(d) || d < 1) throw bad(`dim ${i} is ${d}`);
      if (typeof spec.shape[i] === 'number' && d !== spec.shape[i]) throw bad(`dim ${i} is ${d}`);
    });
    if (t.dims[0]! > meta.maxBatch) throw bad(`batch ${t.dims[0]} over ${meta.maxBatch}`);
    const elements = t.dims.reduce((a, b) => a * b, 1);
    if (t.data.length !== elements) throw bad(`${t.data.length} elements for dims [${t.dims}]`);
    const got = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (got.length !== body.length || got.some((b, i) => b !== body[i])) throw bad('data differs from the body');
  },
  timeBoundMs: 500,
};
