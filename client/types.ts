/**
 * What the API answers, as the client hands it back. The `/predict` and `/moderate` bodies come
 * from the Worker's own import-free answer types (src/answers/types.ts), by `import type` only:
 * the built client has no runtime import from the Worker, and tsc emits those declarations
 * beside the client's (client/dist/src/answers/types.d.ts). The jobs' come from there too. The
 * smaller answers (concepts, policies, models) are written out here because their Worker-side
 * types import Worker modules; test/node/client.test.ts checks at type level that they match
 * what the routes answer.
 */
import type { ErrorType as WorkerErrorType, JobBody, JobCreatedBody, ModerateBody, PredictBody } from '../src/answers/types.js';

export type * from '../src/answers/types.js';

/**
 * An image: its bytes (a Blob or File, an ArrayBuffer, a typed array such as a Uint8Array or a
 * Node Buffer, or a ReadableStream of them), or the address of one for the Worker to fetch
 * (README "URL input": the Worker's host rules apply, not the caller's).
 */
export type ImageBytes = Blob | ArrayBuffer | ArrayBufferView | ReadableStream<Uint8Array>;
export type ImageInput = ImageBytes | { url: string };

/** The error types of the API (`type` of `{ code, type, message }`), the Worker's own list. */
export type ApiErrorType = WorkerErrorType;

/**
 * The client's own failures, with status 0 (no answer) or the answer's status:
 * `timeout`: the call's `timeoutMs` ran out; `network`: fetch itself failed;
 * `unexpected_response`: an answer that is not the API's JSON (a proxy's error page, say).
 */
export type ClientErrorType = 'timeout' | 'network' | 'unexpected_response';

export type ErrorType = ApiErrorType | ClientErrorType;

/** The `X-Cache` header: HIT or MISS in the result cache, BYPASS when it is off. */
export type CacheStatus = 'HIT' | 'MISS' | 'BYPASS';

/** What an answer's headers add to its body (absent when the header is). */
export interface AnswerMeta {
  cache?: CacheStatus;
}

export type ClassifyResult = PredictBody & AnswerMeta;
export type ModerateResult = ModerateBody & AnswerMeta;

/** An inline policy, as `src/policies/schema.ts` checks it (the Worker answers 400 otherwise). */
export interface PolicyRule {
  /** A WordNet lemma (`weapon`) or noun synset id (`n04565375`). */
  concept: string;
  /** The rule fires when the concept's probability is >= this, in [0, 1]. */
  threshold: number;
  action: 'block' | 'flag';
}

export interface InlinePolicy {
  /** 1 to 64 characters of a-z, 0-9 and -. */
  name: string;
  rules: PolicyRule[];
}

/** `GET /jobs/:id` and `POST /jobs`: the Worker's own answer types. */
export type Job = JobBody;
export type JobCreated = JobCreatedBody;

/** `GET /concepts?q=`: what the name resolved to. */
export interface Concept {
  id: string;
  name: string;
  lemmas: string[];
  gloss: string;
  /** How many ImageNet classes fall under it, and their synset ids. */
  classes: number;
  classIds: string[];
}

/** `GET /policies/:name`: the stored policy, each rule with the concept it resolved to. */
export interface StoredPolicy {
  name: string;
  sha256: string;
  rules: StoredRule[];
}

export interface StoredRule extends PolicyRule {
  /** The WordNet concept the rule's `concept` resolved to, and how many ImageNet classes are under it. */
  resolved: { id: string; name: string; gloss: string; classes: number };
}

/** One model of `GET /models`: available, or listed with why it cannot be read. */
export type ModelSummary =
  | {
      id: string;
      available: true;
      version: 'v1' | 'v2';
      depth: 18 | 34 | 50 | 101 | 152;
      precision: 'fp32' | 'int8-qdq' | 'int8-qoperator';
      weights: 'real' | 'synthetic';
      input: { name: string; shape: [number | string, number, number, number] };
      bytes: number;
      stages: number;
      loaded:
        | false
        | {
            loadedAt: string;
            loadMs: number;
            /** Split models: where each stage runs, and the onnxruntime heap each isolate last reported. */
            isolates?: Array<{ stage: number; isolate: string; wasmHeapBytes?: number }>;
          };
    }
  | { id: string; available: false; error?: string };

/** `GET /models`. */
export interface ModelList {
  default: string;
  isolate: { wasmHeapBytes: number };
  models: ModelSummary[];
}
