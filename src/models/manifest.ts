/**
 * The manifest that travels with every model in R2 (`models/<id>/manifest.json`).
 * Everything the Worker needs to run a model is here, so no model facts are hard-coded
 * elsewhere: preprocessing parameters are data, as in transformers.js.
 */

/** How an image becomes the model's input tensor (the zoo's imagenet_preprocess.py). */
export interface PreprocessSpec {
  /** The shorter side is resized to this many pixels (PIL bilinear, antialiased). */
  resizeShorter: number;
  /** Central crop taken from the resized image; equals the model's input H and W. */
  cropHeight: number;
  cropWidth: number;
  /** Per-channel (R, G, B) mean and std applied after scaling 8-bit values to [0, 1]. */
  mean: [number, number, number];
  std: [number, number, number];
}

export type Precision = 'fp32' | 'int8-qdq' | 'int8-qoperator';

/** Whether the weights are the zoo's trained ones or deterministic synthetic ones made here. */
export type WeightsKind = 'real' | 'synthetic';

export interface ModelManifest {
  /** `resnet18v1` ... `resnet152v2`, as on the model zoo page. */
  id: string;
  family: 'resnet';
  version: 'v1' | 'v2';
  depth: 18 | 34 | 50 | 101 | 152;
  precision: Precision;
  input: { name: string; shape: [number | string, number, number, number] };
  output: { name: string; shape: [number | string, number] };
  preprocess: PreprocessSpec;
  /** Label set of the output order; `imagenet-1k` is the synset list bundled with the Worker. */
  labels: 'imagenet-1k';
  /** Hex sha256 and size of model.onnx; the Worker refuses bytes that do not match. */
  sha256: string;
  bytes: number;
  weights: WeightsKind;
  /** Where the weights came from: the zoo URL, or the generator and its seed. */
  source: string;
  /** onnxruntime session settings that travel with the model. */
  session?: {
    /**
     * Skip onnxruntime's weight pre-packing: ~20% less wasm heap (ResNet-101 int8: 108 instead
     * of 129 MiB) for somewhat slower inference. `quantize` sets it for models that would not
     * fit an isolate otherwise.
     */
    disablePrepacking?: boolean;
  };
  /**
   * Present when the model is served in stages (`npm run models -- split`): consecutive slices
   * of model.onnx, each small enough for its own isolate. Stage 0 runs in the isolate that took
   * the request; stage k in the Worker bound as `STAGE_k` (see src/stages/). model.onnx, sha256
   * and bytes above still describe the whole model the stages were cut from.
   */
  stages?: StageManifest[];
  /** Free-form, filled by the model pipeline (fidelity numbers, quantizer settings). */
  notes?: Record<string, unknown>;
}

/** A tensor crossing a stage boundary. `N` (or any string) is the symbolic batch dimension. */
export interface TensorSpec {
  name: string;
  type: TensorType;
  shape: Array<number | string>;
}
export type TensorType = 'float32' | 'uint8';

export interface StageManifest {
  /** Hex sha256 and size of `stage-<k>.onnx`. */
  sha256: string;
  bytes: number;
  /** Stage 0 takes the model's input, the last stage gives the model's output. */
  input: TensorSpec;
  output: TensorSpec;
  session?: ModelManifest['session'];
}

export const IMAGENET_PREPROCESS: PreprocessSpec = {
  resizeShorter: 256,
  cropHeight: 224,
  cropWidth: 224,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

export const MODEL_IDS = [
  'resnet18v1', 'resnet34v1', 'resnet50v1', 'resnet101v1', 'resnet152v1',
  'resnet18v2', 'resnet34v2', 'resnet50v2', 'resnet101v2', 'resnet152v2',
] as const;
export type ModelId = (typeof MODEL_IDS)[number];

export const modelKey = (id: string): string => `models/${id}/model.onnx`;
export const manifestKey = (id: string): string => `models/${id}/manifest.json`;
export const stageFile = (stage: number): string => `stage-${stage}.onnx`;
export const stageKey = (id: string, stage: number): string => `models/${id}/${stageFile(stage)}`;
