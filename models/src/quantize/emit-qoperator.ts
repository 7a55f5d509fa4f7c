/**
 * QOperator form: quantized ops consume and produce uint8 tensors directly (QLinearConv,
 * com.microsoft QLinearAdd / QLinearGlobalAveragePool / QGemm, MaxPool and Flatten on uint8);
 * QuantizeLinear/DequantizeLinear appear only where float and uint8 parts of the graph meet.
 *
 * Naming: a uint8 tensor is `<float name>_quantized`; where a float reader needs a tensor that
 * only exists as uint8, DequantizeLinear recreates it under its original float name, so float
 * nodes and graph outputs keep their inputs unchanged.
 */
import { makeNode, attr, type ModelProto, type NodeProto } from '../onnx';
import { MS_DOMAIN, attrInt, consumersOf } from './graph';
import { Emitter } from './emit-common';
import type { Plan, QParams } from './plan';

const u8 = (t: string): string => `${t}_quantized`;

export function emitQOperator(plan: Plan, grids: Map<string, QParams>, tag: string): ModelProto {
  const e = new Emitter(plan, grids);
  const { gi, quantized, role, fusedOut } = plan;
  const floatAvailable = new Set<string>(gi.inputs);
  const dequantized = new Set<string>();

  const quantize = (t: string): void => {
    const [s, z] = e.actParams(t);
    e.push(makeNode('QuantizeLinear', [t, s, z], [u8(t)], `${t}_QuantizeLinear`));
  };
  const asFloat = (t: string): void => {
    if (!t || !quantized.has(t) || floatAvailable.has(t) || dequantized.has(t)) return;
    const [s, z] = e.actParams(t);
    e.push(makeNode('DequantizeLinear', [u8(t), s, z], [t], `${t}_DequantizeLinear`));
    dequantized.add(t);
  };
  /** Inputs (x, x_scale, x_zero_point) of a QLinear op reading activation `t`. */
  const qIn = (t: string): string[] => [u8(t), ...e.actParams(t)];
  const withDomain = (n: NodeProto): NodeProto => {
    n.domain = MS_DOMAIN;
    return n;
  };

  const floatRoles = new Set(['float', 'gemm-weights']);
  const readersAllQuantized = (t: string): boolean => consumersOf(gi, t).every((c) => !floatRoles.has(role.get(c) ?? 'float'));

  for (const t of gi.inputs) if (quantized.has(t)) quantize(t);

  for (const n of gi.nodes) {
    const r = role.get(n) ?? 'float';
    const x = n.input[0] ?? '';
    switch (r) {
      case 'relu':
        break; // emitted by its conv/add
      case 'conv': {
        const y = fusedOut.get(n)!;
        const w = e.weight(n.input[1] ?? '', 0);
        const inputs = [...qIn(x), w.q, w.s, w.z, ...e.actParams(y)];
        if (n.input[2]) inputs.push(e.bias(n, n.input[2], x, w.scale).q);
        const q = makeNode('QLinearConv', inputs, [u8(y)], `${n.name}_quant`);
        q.attribute = n.attribute;
        e.push(q);
        break;
      }
      case 'add': {
        const y = fusedOut.get(n)!;
        const b = n.input[1] ?? '';
        e.push(withDomain(makeNode('QLinearAdd', [...qIn(x), ...qIn(b), ...e.actParams(y)], [u8(y)], `${n.name}_quant`)));
        break;
      }
      case 'pass': {
        const p = makeNode(n.opType, [u8(x), ...n.input.slice(1)], [u8(n.output[0] ?? '')], `${n.name}_quant`);
        p.attribute = n.attribute;
        e.push(p);
        break;
      }
      case 'gap': {
        const y = n.output[0] ?? '';
        e.push(
          withDomain(
            makeNode('QLinearGlobalAveragePool', [...qIn(x), ...e.actParams(y)], [u8(y)], `${n.name}_quant`, {
              channels_last: attr.int(0),
            }),
          ),
        );
        break;
      }
      case 'gemm': {
        const transB = attrInt(n, 'transB', 0);
        const w = e.weight(n.input[1] ?? '', transB === 1 ? 0 : 1);
        const inputs = [...qIn(x), w.q, w.s, w.z];
        // No y_scale/y_zero_point: QGemm then writes float logits.
        if (n.input[2]) inputs.push(e.bias(n, n.input[2], x, w.scale).q);
        e.push(
          withDomain(
            makeNode('QGemm', inputs, [n.output[0] ?? ''], `${n.name}_quant`, {
              alpha: attr.float(1),
              transA: attr.int(0),
              transB: attr.int(transB),
            }),
          ),
        );
        floatAvailable.add(n.output[0] ?? '');
        break;
      }
      case 'gemm-weights': {
        for (const i of n.input) asFloat(i);
        const transB = attrInt(n, 'transB', 0);
        const wName = n.input[1] ?? '';
        const w = e.weight(wName, transB === 1 ? 0 : 1);
        e.push(makeNode('DequantizeLinear', [w.q, w.s, w.z], [`${wName}_dequantized`], `${wName}_DequantizeLinear`, { axis: attr.int(transB === 1 ? 0 : 1) }));
        const g = makeNode('Gemm', [x, `${wName}_dequantized`, ...n.input.slice(2)], n.output, n.name);
        g.attribute = n.attribute;
        e.push(g);
        for (const o of n.output) if (o) floatAvailable.add(o);
        break;
      }
      case 'float': {
        const y = n.output[0] ?? '';
        if (n.opType === 'Relu' && quantized.has(y) && !gi.outputs.has(y) && readersAllQuantized(y) && e.params(y).zeroPoint === 0) {
          // Relu -> QuantizeLinear with zero point 0 (a ReLU output's grid starts at 0) is the
          // QuantizeLinear alone: saturation at 0 is the ReLU. One pass less over the tensor.
          asFloat(x);
          const [s, z] = e.actParams(y);
          e.push(makeNode('QuantizeLinear', [x, s, z], [u8(y)], `${y}_QuantizeLinear`));
          break;
        }
        for (const i of n.input) asFloat(i);
        e.push(n);
        for (const o of n.output) {
          if (!o) continue;
          floatAvailable.add(o);
          if (quantized.has(o)) quantize(o);
        }
        break;
      }
    }
  }
  for (const o of gi.outputs) asFloat(o);
  return e.finish(tag);
}
