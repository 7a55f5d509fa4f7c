/**
 * QDQ form: the float graph stays as it is; every uint8 activation `t` gets
 * `t -> QuantizeLinear -> DequantizeLinear -> t_dequantized` right where it is produced and all
 * its readers take the dequantized tensor; weights become int8 initializers behind a per-channel
 * DequantizeLinear (axis = output channel, opset 13) and biases int32 ones (scale = input
 * scale * weight scale). onnxruntime's QDQ transformers fuse these groups back into
 * QLinearConv etc. at session creation; the model itself stays runnable by any ONNX runtime.
 */
import { makeNode, attr, onnx, type ModelProto, type NodeProto } from '../onnx';
import { attrInt } from './graph';
import { Emitter } from './emit-common';
import type { Plan, QParams } from './plan';

export function emitQdq(plan: Plan, grids: Map<string, QParams>, tag: string): ModelProto {
  const e = new Emitter(plan, grids);
  const { gi, quantized, role } = plan;
  const rename = new Map<string, string>();
  const weightsDone = new Set<string>();

  const qdq = (t: string): void => {
    const [s, z] = e.actParams(t);
    const q = `${t}_quantized`;
    const dq = `${t}_dequantized`;
    e.push(makeNode('QuantizeLinear', [t, s, z], [q], `${t}_QuantizeLinear`));
    e.push(makeNode('DequantizeLinear', [q, s, z], [dq], `${t}_DequantizeLinear`));
    rename.set(t, dq);
  };
  const dqWeight = (n: NodeProto, axis: 0 | 1, quantizedBias = true): { inputs: string[] } => {
    const x = n.input[0] ?? '';
    const w = e.weight(n.input[1] ?? '', axis);
    const wf = `${n.input[1] ?? ''}_dequantized`;
    // One DequantizeLinear per weight even if several nodes share it.
    if (!weightsDone.has(wf)) {
      weightsDone.add(wf);
      e.push(makeNode('DequantizeLinear', [w.q, w.s, w.z], [wf], `${n.input[1] ?? ''}_DequantizeLinear`, { axis: attr.int(axis) }));
    }
    const inputs = [rename.get(x) ?? x, wf];
    if (n.input[2] && !quantizedBias) inputs.push(n.input[2]);
    else if (n.input[2]) {
      const b = e.bias(n, n.input[2], x, w.scale);
      const bf = `${b.q}_dequantized`;
      e.push(makeNode('DequantizeLinear', [b.q, b.s, b.z], [bf], `${b.q}_DequantizeLinear`, { axis: attr.int(0) }));
      inputs.push(bf);
    }
    return { inputs };
  };

  for (const t of gi.inputs) if (quantized.has(t)) qdq(t);

  for (const n of gi.nodes) {
    const r = role.get(n) ?? 'float';
    let out: NodeProto;
    if (r === 'conv') {
      out = makeNode('Conv', dqWeight(n, 0).inputs, n.output, n.name);
      out.attribute = n.attribute;
    } else if (r === 'gemm' || r === 'gemm-weights') {
      const transB = attrInt(n, 'transB', 0);
      // Weight-only: the input is float, so an int32 bias (scaled by an input scale) has no meaning.
      out = makeNode('Gemm', dqWeight(n, transB === 1 ? 0 : 1, r === 'gemm').inputs, n.output, n.name);
      out.attribute = n.attribute;
    } else {
      // A copy: the plan's nodes may be emitted again in the other form.
      out = onnx.NodeProto.create({
        opType: n.opType,
        domain: n.domain,
        name: n.name,
        input: n.input.map((i) => rename.get(i) ?? i),
        output: n.output,
        attribute: n.attribute,
      });
    }
    e.push(out);
    for (const o of out.output) if (o && quantized.has(o)) qdq(o);
  }
  return e.finish(tag);
}
