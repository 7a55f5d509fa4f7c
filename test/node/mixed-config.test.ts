/**
 * MODEL_WORKERS (src/config.ts) and which model a request path runs (src/middleware/route-model):
 * the pure parts of serving models from Workers of their own. The forwarding itself is tested
 * inside workerd (test/worker/route-model.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { parseModelWorkers } from '../../src/config';
import { modelOfPath } from '../../src/middleware/route-model';

describe('MODEL_WORKERS', () => {
  it('maps model ids to binding names, tolerating spaces and a trailing comma', () => {
    const workers = parseModelWorkers(' resnet34v1 = MODEL_A,resnet50v1=MODEL_B , ');
    expect([...workers]).toEqual([
      ['resnet34v1', 'MODEL_A'],
      ['resnet50v1', 'MODEL_B'],
    ]);
  });

  it('is empty when unset or blank (every model served locally)', () => {
    expect(parseModelWorkers(undefined).size).toBe(0);
    expect(parseModelWorkers('').size).toBe(0);
    expect(parseModelWorkers(' , ').size).toBe(0);
  });

  it('refuses malformed entries, naming the entry', () => {
    const cases: Array<[string, RegExp]> = [
      ['resnet34v1', /"resnet34v1" is not one model=binding pair/],
      ['resnet34v1=MODEL_A=MODEL_B', /is not one model=binding pair/],
      ['=MODEL_A', /"=MODEL_A" does not start with a model id/],
      ['ResNet34=MODEL_A', /does not start with a model id/],
      ['resnet34v1=', /"resnet34v1=" does not end with a binding name/],
      ['resnet34v1=MODEL-A', /does not end with a binding name/],
      ['resnet34v1=MODEL_A,resnet34v1=MODEL_B', /names resnet34v1 a second time/],
      ['resnet34v1:MODEL_A', /is not one model=binding pair/],
    ];
    for (const [raw, message] of cases) {
      expect(() => parseModelWorkers(raw), raw).toThrow(message);
      expect(() => parseModelWorkers(raw), raw).toThrow(/^MODEL_WORKERS: /);
    }
  });
});

describe('the model of a request path', () => {
  it('reads each predict route shape as the routes do', () => {
    expect(modelOfPath('/predict', 'resnet18v1')).toBe('resnet18v1');
    expect(modelOfPath('/predict/resnet50v1', 'resnet18v1')).toBe('resnet50v1');
    expect(modelOfPath('/predictions/resnet50v1', 'resnet18v1')).toBe('resnet50v1');
    expect(modelOfPath('/resnet50v1/predict', 'resnet18v1')).toBe('resnet50v1');
    expect(modelOfPath('/predict/resnet%35%30v1', 'resnet18v1')).toBe('resnet50v1');
    expect(modelOfPath('/v2/models/resnet50v1/infer', 'resnet18v1')).toBe('resnet50v1');
    expect(modelOfPath('/v2/models/resnet50v1/versions/1/infer', 'resnet18v1')).toBe('resnet50v1');
  });

  it('gives moderate requests the default model, "/moderate/predict" included (a policy named predict)', () => {
    expect(modelOfPath('/moderate', 'resnet34v1')).toBe('resnet34v1');
    expect(modelOfPath('/moderate/weapons', 'resnet34v1')).toBe('resnet34v1');
    expect(modelOfPath('/moderate/predict', 'resnet34v1')).toBe('resnet34v1');
  });

  it('has no model for other paths', () => {
    for (const path of ['/models', '/models/resnet50v1', '/predict/a/b', '/moderate/a/b', '/ping', '/', '/predict/%E0%A4%A', '/v2/models/resnet50v1', '/v2/models/resnet50v1/ready', '/v2/models/a/versions/1/ready', '/v2/models/a/b/infer']) {
      expect(modelOfPath(path, 'resnet18v1'), path).toBeUndefined();
    }
  });
});
