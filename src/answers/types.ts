/**
 * The bodies of the native answers (`/predict`'s native shape, `/moderate`, jobs), as plain
 * types with no imports: the RPC types (src/rpc/types.ts) re-export them to consumer Workers,
 * and the typed client (client/types.ts) to its users, neither of which must need this Worker's
 * sources or its Env to type-check.
 */

export interface ModelInfo {
  id: string;
  version: 'v1' | 'v2';
  depth: 18 | 34 | 50 | 101 | 152;
  precision: 'fp32' | 'int8-qdq' | 'int8-qoperator';
  /** `synthetic`: generated for testing, the answer is no real classification (see `notice`). */
  weights: 'real' | 'synthetic';
  source: string;
}

export interface PredictionBody {
  index: number;
  /** WordNet id, e.g. `n02124075`. */
  synset: string;
  label: string;
  probability: number;
}

export interface ConceptScoreBody {
  id: string;
  name: string;
  gloss: string;
  probability: number;
  /** How many ImageNet classes fall under the concept. */
  classes: number;
}

/** Milliseconds; `model` is the wait for the model's session (0 when warm). */
export interface TimingsBody {
  model: number;
  decode: number;
  preprocess: number;
  inference: number;
  total: number;
}

/** `POST /predict` (native shape). */
export interface PredictBody {
  model: ModelInfo;
  /** Present exactly when the weights are synthetic. */
  notice?: string;
  images: Array<{
    width: number;
    height: number;
    predictions: PredictionBody[];
    /** Present when concepts were asked for. */
    concepts?: ConceptScoreBody[];
  }>;
  timings: TimingsBody;
}

export type Decision = 'allow' | 'flag' | 'block';

export interface TriggeredBody {
  concept: string;
  name: string;
  probability: number;
  threshold: number;
  action: 'block' | 'flag';
}

/** `POST /moderate`. */
export interface ModerateBody {
  model: ModelInfo;
  notice?: string;
  policy: { name: string; sha256: string };
  images: Array<{
    width: number;
    height: number;
    /** The strictest action among the rules that fired; `allow` when none did. */
    decision: Decision;
    triggered: TriggeredBody[];
    concepts: ConceptScoreBody[];
    predictions: PredictionBody[];
  }>;
  timings: TimingsBody;
}

export type JobStatus = 'queued' | 'running' | 'done' | 'failed';

export interface JobError {
  code: number;
  type: string;
  message: string;
}

/** How the webhook went: `none` without a callback, `refused` for a metadata callback not allowed. */
export interface DeliveryState {
  status: 'none' | 'pending' | 'delivered' | 'failed' | 'refused';
  attempts: number;
  reason?: string;
  at?: string;
}

/** `GET /jobs/:id`: a job as the API shows it (its stored record, src/jobs/types.ts, less the callback URL). */
export interface JobBody {
  id: string;
  status: JobStatus;
  /** When failed: why, in words (also in `error`). */
  reason?: string;
  error?: JobError;
  /** Exactly the `/moderate` body, when done. */
  result?: ModerateBody;
  source: { key: string } | { host: string };
  metadata?: unknown;
  createdAt: string;
  updatedAt: string;
  completedAt?: string;
  /** Queue deliveries of the job's message seen so far. */
  attempts: number;
  /** The last transient failure, while the job waits for its retry. */
  lastError?: string;
  delivery: DeliveryState;
  /**
   * When the job's message reached the dead-letter queue: its consumer crashed on every
   * attempt, or its webhook still failed on the last one.
   */
  deadLetteredAt?: string;
}

/** `POST /jobs` answers 202 with this. */
export interface JobCreatedBody {
  id: string;
  status: 'queued';
}

/**
 * The error types of the API (src/errors.ts gives each its HTTP status, which error bodies carry
 * in `code`). Here, import-free, so that the RPC types and the client can name them.
 */
export type ErrorType =
  | 'bad_request'
  | 'unauthorized'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'unprocessable_image'
  | 'model_unavailable'
  | 'overloaded'
  | 'bad_gateway'
  | 'gateway_timeout'
  | 'internal';

/** Every error answer's body. */
export interface ErrorBody {
  code: number;
  type: ErrorType;
  message: string;
}
