/**
 * The front side of a split model. Stage 0 runs in the isolate that took the request; stage k
 * runs in the Worker bound as `STAGE_k` (wrangler.stage-k.toml), which holds only that stage's
 * session. To the pipeline the chain is one Session, so nothing above the registry knows that
 * a model is split.
 */
import { modelUnavailable } from '../errors';
import type { StageManifest } from '../models/manifest';
import type { Session } from '../onnx/session';
import type { Tensor } from '../onnx/tensor';
import { HEAP_HEADER, readTensor, tensorBody, tensorHeaders, VERSION_HEADER } from './wire';

/** Service bindings by name (`STAGE_1`, ...), as the Worker's env has them. */
export type StageBindings = (binding: string) => Fetcher | undefined;

export const stageBinding = (stage: number): string => `STAGE_${stage}`;

/** The path a stage Worker serves (src/stages/server.ts). */
export const stagePath = (modelId: string, stage: number): string => `/models/${modelId}/stages/${stage}`;

export interface RemoteStage extends Session {
  readonly stage: number;
  readonly binding: string;
  /** The stage isolate's onnxruntime heap as it last reported it. */
  readonly wasmHeapBytes: number | undefined;
}

export function remoteStage(fetcher: Fetcher, modelId: string, stage: number, spec: StageManifest, timeoutMs = 10_000): RemoteStage {
  const binding = stageBinding(stage);
  const culprit = `model ${modelId}: stage ${stage} (${binding})`;
  let heap: number | undefined;
  return {
    stage,
    binding,
    get wasmHeapBytes() {
      return heap;
    },
    async run(input: Tensor): Promise<Tensor> {
      let res: Response;
      try {
        // The host is never resolved: a service binding delivers to its Worker whatever the URL.
        res = await fetcher.fetch(`https://stage${stagePath(modelId, stage)}`, {
          method: 'POST',
          headers: { ...tensorHeaders(input), [VERSION_HEADER]: spec.sha256 },
          body: tensorBody(input),
          // A stage that hangs must not hold the request (and its slot) forever.
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        if (err instanceof Error && err.name === 'TimeoutError') {
          throw modelUnavailable(`${culprit} timed out after ${timeoutMs} ms (STAGE_TIMEOUT_MS)`, err);
        }
        throw modelUnavailable(`${culprit} is unreachable: ${err instanceof Error ? err.message : String(err)}`, err);
      }
      if (!res.ok) {
        // The stage answers JSON errors like any of our Workers; whatever it was, for the
        // caller the model is unavailable, and the stage's own message says why.
        const body = (await res.json().catch(() => undefined)) as { message?: string } | undefined;
        throw modelUnavailable(`${culprit} failed (${res.status}): ${body?.message ?? res.statusText}`);
      }
      heap = Number(res.headers.get(HEAP_HEADER)) || heap;
      try {
        return await readTensor(res, spec.output, input.dims[0]!);
      } catch (err) {
        if (err instanceof Error && err.name === 'TimeoutError') {
          throw modelUnavailable(`${culprit} timed out after ${timeoutMs} ms (STAGE_TIMEOUT_MS) while sending its answer`, err);
        }
        throw modelUnavailable(`${culprit} answered an unexpected tensor: ${err instanceof Error ? err.message : String(err)}`, err);
      }
    },
    // The stage Worker owns its session and evicts it under its own limits.
    release: () => Promise.resolve(),
  };
}

/** The stages as one session: each one's output is the next one's input. */
export function chainSessions(stages: readonly Session[]): Session {
  return {
    async run(input) {
      let tensor = input;
      for (const stage of stages) tensor = await stage.run(tensor);
      return tensor;
    },
    release: async () => {
      await Promise.all(stages.map((s) => s.release()));
    },
  };
}
