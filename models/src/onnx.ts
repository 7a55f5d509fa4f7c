/**
 * ONNX read/write for the model tooling (generator now, quantizer later).
 *
 * The messages come from `onnx-proto` (protobufjs static code generated from onnx.proto of
 * ONNX v1.10.2, IR version 8): it both encodes and decodes, and keeps `raw_data` as bytes
 * views instead of JS number arrays, which is what makes 240 MB models cheap to write and
 * read. Everything else in the tooling should import ONNX types and helpers from here, not
 * from `onnx-proto` directly, so the library can be swapped in one place.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';

// The package is CommonJS whose `module.exports` is assigned at run time, so Node's ESM
// loader cannot see a named `onnx` export; go through the default export.
export const onnx: typeof OnnxTypes = onnxProto.onnx;

export type ModelProto = OnnxTypes.ModelProto;
export type IModelProto = OnnxTypes.IModelProto;
export type GraphProto = OnnxTypes.GraphProto;
export type IGraphProto = OnnxTypes.IGraphProto;
export type NodeProto = OnnxTypes.NodeProto;
export type INodeProto = OnnxTypes.INodeProto;
export type TensorProto = OnnxTypes.TensorProto;
export type ITensorProto = OnnxTypes.ITensorProto;
export type AttributeProto = OnnxTypes.AttributeProto;
export type IAttributeProto = OnnxTypes.IAttributeProto;
export type ValueInfoProto = OnnxTypes.ValueInfoProto;
export type IValueInfoProto = OnnxTypes.IValueInfoProto;

/** `TensorProto.DataType` values used by this project (the enum's own names are long). */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
} as const;

/** Int64 fields decode as `Long` objects (protobufjs); anything we build uses numbers. */
export interface LongLike {
  toNumber(): number;
}
export const toNumber = (v: number | LongLike | null | undefined): number =>
  v == null ? 0 : typeof v === 'number' ? v : v.toNumber();

// raw_data is little-endian by the ONNX spec; typed-array views are host-endian.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
if (!LITTLE_ENDIAN) throw new Error('models/src/onnx.ts assumes a little-endian host');

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** A float32 initializer stored as raw_data (no copy: the tensor views `data`). */
export function floatTensor(name: string, dims: readonly number[], data: Float32Array): TensorProto {
  checkSize(name, dims, data.length);
  return onnx.TensorProto.create({ name, dims: [...dims], dataType: DataType.FLOAT, rawData: bytesOf(data) });
}

export function int64Tensor(name: string, dims: readonly number[], data: readonly number[]): TensorProto {
  checkSize(name, dims, data.length);
  const raw = new BigInt64Array(data.map((v) => BigInt(v)));
  return onnx.TensorProto.create({ name, dims: [...dims], dataType: DataType.INT64, rawData: bytesOf(raw) });
}

function checkSize(name: string, dims: readonly number[], n: number): void {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (expected !== n) throw new Error(`tensor ${name}: dims ${dims.join('x')} need ${expected} values, got ${n}`);
}

/** Element count of a tensor from its dims. */
export const tensorSize = (t: ITensorProto): number => (t.dims ?? []).reduce<number>((a, d) => a * toNumber(d), 1);

/**
 * The values of a FLOAT initializer, from raw_data or float_data. A decoded raw_data view may
 * sit at an offset that is not a multiple of 4, so it is copied rather than reinterpreted.
 */
export function tensorToFloat32(t: ITensorProto): Float32Array {
  if (t.dataType !== DataType.FLOAT) throw new Error(`tensor ${t.name ?? ''}: dataType ${t.dataType ?? '?'} is not FLOAT`);
  const n = tensorSize(t);
  if (t.rawData && t.rawData.length > 0) {
    if (t.rawData.length !== n * 4) throw new Error(`tensor ${t.name ?? ''}: raw_data has ${t.rawData.length} bytes, dims need ${n * 4}`);
    const out = new Float32Array(n);
    bytesOf(out).set(t.rawData);
    return out;
  }
  const fd = t.floatData ?? [];
  if (fd.length !== n) throw new Error(`tensor ${t.name ?? ''}: float_data has ${fd.length} values, dims need ${n}`);
  return Float32Array.from(fd);
}

/** Attribute values are tagged so ints and floats cannot be confused (JS has one number type). */
export type AttrValue =
  | { int: number }
  | { float: number }
  | { ints: readonly number[] }
  | { floats: readonly number[] }
  | { string: string };

export const attr = {
  int: (v: number): AttrValue => ({ int: v }),
  float: (v: number): AttrValue => ({ float: v }),
  ints: (v: readonly number[]): AttrValue => ({ ints: v }),
  floats: (v: readonly number[]): AttrValue => ({ floats: v }),
  string: (v: string): AttrValue => ({ string: v }),
};

const AT = onnx.AttributeProto.AttributeType;

function makeAttribute(name: string, v: AttrValue): AttributeProto {
  if ('int' in v) return onnx.AttributeProto.create({ name, type: AT.INT, i: v.int });
  if ('float' in v) return onnx.AttributeProto.create({ name, type: AT.FLOAT, f: v.float });
  if ('ints' in v) return onnx.AttributeProto.create({ name, type: AT.INTS, ints: [...v.ints] });
  if ('floats' in v) return onnx.AttributeProto.create({ name, type: AT.FLOATS, floats: [...v.floats] });
  return onnx.AttributeProto.create({ name, type: AT.STRING, s: new TextEncoder().encode(v.string) });
}

export function makeNode(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  name: string,
  attrs: Record<string, AttrValue> = {},
): NodeProto {
  return onnx.NodeProto.create({
    opType,
    name,
    input: [...inputs],
    output: [...outputs],
    attribute: Object.entries(attrs).map(([k, v]) => makeAttribute(k, v)),
  });
}

/** A tensor value_info; string dims are symbolic (`dim_param`), numbers fixed (`dim_value`). */
export function valueInfo(name: string, elemType: number, shape: readonly (number | string)[]): ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: shape.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  });
}

/**
 * A graph whose repeated fields hold message classes, as `decodeModel` and the builders here
 * produce them (protobufjs fills every repeated field, so no `?? []` at each use). The cast is
 * needed because the generated `IModelProto.graph` is only typed as the optional-field interface.
 */
export interface Graph {
  name: string;
  node: NodeProto[];
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
}

export function graphOf(model: IModelProto): Graph {
  if (!model.graph) throw new Error('model has no graph');
  return model.graph as Graph;
}

/** Reads an attribute of a decoded node, or undefined. */
export function getAttribute(node: INodeProto, name: string): IAttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export interface ModelOptions {
  graph: IGraphProto;
  opset: number;
  /** IR version 7 is the lowest that opset 13 allows and what ORT 1.x reads everywhere. */
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

export function makeModel(o: ModelOptions): ModelProto {
  return onnx.ModelProto.create({
    irVersion: o.irVersion ?? 7,
    producerName: o.producerName ?? 'edge-resnet',
    producerVersion: o.producerVersion ?? '',
    docString: o.docString ?? '',
    opsetImport: [{ domain: '', version: o.opset }],
    graph: o.graph,
    metadataProps: Object.entries(o.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
}

export function encodeModel(model: IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** Decodes model bytes. Initializer raw_data are views into `bytes` (keep it alive, do not mutate it). */
export function decodeModel(bytes: Uint8Array): ModelProto {
  return onnx.ModelProto.decode(bytes);
}
