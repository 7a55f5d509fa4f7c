/**
 * The API's bodies as zod 4 schemas: the routes validate their query, path and JSON inputs
 * with them and the OpenAPI document (GET /openapi.json) is generated from them, so the two
 * cannot drift. Answer bodies are built elsewhere (src/answers, the routes); ./check.ts holds
 * type-level checks that these schemas and those types agree.
 *
 * Each schema named with `.openapi('Name')` becomes a component of the document.
 */
import { z } from '@hono/zod-openapi';
import { JobRequestSchema } from '../jobs/request';
import { POLICY_NAME, PolicySchema } from '../policies/schema';

// ---------------------------------------------------------------------------------------------
// Errors

export const ErrorTypeSchema = z
  .enum([
    'bad_request',
    'unauthorized',
    'not_found',
    'method_not_allowed',
    'payload_too_large',
    'unsupported_media_type',
    'unprocessable_image',
    'model_unavailable',
    'overloaded',
    'bad_gateway',
    'gateway_timeout',
    'internal',
  ])
  .openapi('ErrorType');

/** Every error of the API but /v2's: `onError` (src/errors.ts) writes it. */
export const ErrorBodySchema = z
  .object({
    /** The HTTP status, repeated so that a body read on its own still says it. */
    code: z.number().int().openapi({ example: 400 }),
    type: ErrorTypeSchema,
    message: z.string().openapi({ example: 'topk: must be an integer from 1 to 1000, got "0"' }),
  })
  .openapi('Error', { description: 'An error: `code` is the HTTP status, `type` a stable name to branch on, `message` for people.' });

/** The Open Inference Protocol's error object, for every /v2 path. */
export const V2ErrorSchema = z
  .object({ error: z.string() })
  .openapi('V2Error', { description: 'The Open Inference Protocol error object: the message the rest of the API would give for the same failure.' });

// ---------------------------------------------------------------------------------------------
// Predictions (POST /predict and the compatibility shapes)

export const ModelInfoSchema = z
  .object({
    id: z.string().openapi({ example: 'resnet50v1' }),
    version: z.enum(['v1', 'v2']),
    depth: z.union([z.literal(18), z.literal(34), z.literal(50), z.literal(101), z.literal(152)]),
    precision: z.enum(['fp32', 'int8-qdq', 'int8-qoperator']),
    weights: z.enum(['real', 'synthetic']).openapi({ description: '`synthetic`: generated for testing; the answer is no real classification (see `notice`).' }),
    source: z.string().openapi({ description: 'Where the weights came from: the model zoo URL, or the generator and its seed.' }),
  })
  .openapi('ModelInfo');

export const PredictionSchema = z
  .object({
    index: z.number().int().min(0).openapi({ description: 'Class index in the model output (ImageNet-1k order).' }),
    synset: z.string().openapi({ example: 'n02124075', description: 'WordNet id.' }),
    label: z.string().openapi({ example: 'Egyptian cat' }),
    probability: z.number().min(0).max(1),
  })
  .openapi('Prediction');

export const ConceptScoreSchema = z
  .object({
    id: z.string().openapi({ example: 'n02084071' }),
    name: z.string().openapi({ example: 'dog, domestic dog, Canis familiaris' }),
    gloss: z.string(),
    probability: z.number().min(0).max(1).openapi({ description: 'Sum of the probabilities of the ImageNet classes under the concept.' }),
    classes: z.number().int().openapi({ description: 'How many ImageNet classes fall under the concept.' }),
  })
  .openapi('ConceptScore');

export const TimingsSchema = z
  .object({
    model: z.number().openapi({ description: 'Wait for the model session (0 when warm).' }),
    decode: z.number(),
    preprocess: z.number(),
    inference: z.number(),
    total: z.number(),
  })
  .openapi('Timings', { description: 'Milliseconds.' });

const notice = z.string().optional().openapi({ description: 'Present exactly when the weights are synthetic: the classes are not a real classification of the image.' });

export const PredictBodySchema = z
  .object({
    model: ModelInfoSchema,
    notice,
    images: z.array(
      z.object({
        width: z.number().int(),
        height: z.number().int(),
        predictions: z.array(PredictionSchema),
        concepts: z.array(ConceptScoreSchema).optional().openapi({ description: 'Present when `concepts` was asked for.' }),
      }),
    ),
    timings: TimingsSchema,
  })
  .openapi('PredictAnswer', { description: 'The native answer: one entry per image, in the order sent.' });

const ModelServerPredictionSchema = z.object({
  class: z.string().openapi({ example: 'n02124075 Egyptian cat', description: 'Synset id and label.' }),
  probability: z.number(),
});

/** `POST /{model}/predict`: the model server's shape, a list for one image, a list of lists for a batch. */
export const ModelServerAnswerSchema = z
  .union([z.array(ModelServerPredictionSchema), z.array(z.array(ModelServerPredictionSchema))])
  .openapi('ModelServerAnswer', { description: 'One image: its top K as `[{ class, probability }]`; a batch: one such list per image.' });

/** `POST /predictions/{model}`: TorchServe's shape, `{ label: probability }` per image. */
export const TorchServeAnswerSchema = z
  .union([z.record(z.string(), z.number()), z.array(z.record(z.string(), z.number()))])
  .openapi('TorchServeAnswer', { description: "One image: `{ label: probability }` for its top K (the label's first synonym); a batch: one such object per image." });

// ---------------------------------------------------------------------------------------------
// Moderation and policies

// Schemas made in other modules are cloned before `.openapi()`: zod 4 gives an instance the
// methods its prototype had when it was made, and a module evaluated before @hono/zod-openapi
// extended zod (a test importing src/policies first, say) made them without `.openapi`.
export const PolicyRequestSchema = PolicySchema.clone().openapi('Policy', {
  description: 'A moderation policy: each rule fires when its concept\'s probability is at least `threshold`.',
});

export const TriggeredSchema = z
  .object({
    concept: z.string(),
    name: z.string(),
    probability: z.number(),
    threshold: z.number(),
    action: z.enum(['block', 'flag']),
  })
  .openapi('TriggeredRule');

export const ModerateBodySchema = z
  .object({
    model: ModelInfoSchema,
    notice,
    policy: z.object({ name: z.string(), sha256: z.string().openapi({ description: "Hex SHA-256 of the policy's canonical JSON." }) }),
    images: z.array(
      z.object({
        width: z.number().int(),
        height: z.number().int(),
        decision: z.enum(['allow', 'flag', 'block']).openapi({ description: 'The strictest action among the rules that fired; `allow` when none did.' }),
        triggered: z.array(TriggeredSchema),
        concepts: z.array(ConceptScoreSchema),
        predictions: z.array(PredictionSchema),
      }),
    ),
    timings: TimingsSchema,
  })
  .openapi('ModerateAnswer');

export const PolicyNameSchema = z
  .string()
  .regex(POLICY_NAME, { error: (issue) => `policy name "${String(issue.input).slice(0, 70)}" must be 1 to 64 characters of a-z, 0-9 and -` })
  .openapi({ example: 'weapons' });

export const PolicyListSchema = z.object({ policies: z.array(z.string()) }).openapi('PolicyList');

export const PolicyDetailSchema = z
  .object({
    name: z.string(),
    sha256: z.string(),
    rules: z.array(
      z.object({
        concept: z.string(),
        threshold: z.number(),
        action: z.enum(['block', 'flag']),
        resolved: z
          .object({ id: z.string(), name: z.string(), gloss: z.string(), classes: z.number().int() })
          .openapi({ description: 'The concept the rule resolved to.' }),
      }),
    ),
  })
  .openapi('PolicyDetail');

// ---------------------------------------------------------------------------------------------
// Concepts

export const ConceptSchema = z
  .object({
    id: z.string().openapi({ example: 'n02084071' }),
    name: z.string(),
    lemmas: z.array(z.string()),
    gloss: z.string(),
    classes: z.number().int(),
    classIds: z.array(z.string()).openapi({ description: 'The ImageNet classes (synset ids) under the concept.' }),
  })
  .openapi('Concept');

// ---------------------------------------------------------------------------------------------
// Jobs

export const JobRequestBodySchema = JobRequestSchema.clone().openapi('JobRequest', {
  description: 'Exactly one of `key` (an object in the uploads bucket) and `url`. `policy`: a stored policy\'s name or an inline policy (at most 16 KB of JSON); `metadata`: any JSON (at most 4 KB), echoed back.',
});

const JobStatusSchema = z.enum(['queued', 'running', 'done', 'failed']);

export const JobAcceptedSchema = z
  .object({ id: z.uuid(), status: z.literal('queued') })
  .openapi('JobAccepted');

export const JobSchema = z
  .object({
    id: z.uuid(),
    status: JobStatusSchema,
    reason: z.string().optional().openapi({ description: 'When failed: why, in words.' }),
    error: z.object({ code: z.number().int(), type: z.string(), message: z.string() }).optional(),
    result: ModerateBodySchema.optional().openapi({ description: 'The /moderate answer, when done.' }),
    source: z.union([z.object({ key: z.string() }), z.object({ host: z.string() })]),
    metadata: z.unknown().optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
    completedAt: z.string().optional(),
    attempts: z.number().int().openapi({ description: 'Queue deliveries of the job so far.' }),
    lastError: z.string().optional().openapi({ description: 'The last transient failure, while the job waits for its retry.' }),
    delivery: z.object({
      status: z.enum(['none', 'pending', 'delivered', 'failed', 'refused']),
      attempts: z.number().int(),
      reason: z.string().optional(),
      at: z.string().optional(),
    }),
  })
  .openapi('Job');

// ---------------------------------------------------------------------------------------------
// Models and health

const DepthSchema = z.union([z.literal(18), z.literal(34), z.literal(50), z.literal(101), z.literal(152)]);
const PrecisionSchema = z.enum(['fp32', 'int8-qdq', 'int8-qoperator']);
const InputSpecSchema = z.object({ name: z.string(), shape: z.tuple([z.union([z.number(), z.string()]), z.number(), z.number(), z.number()]) });
const TensorSpecSchema = z.object({ name: z.string(), type: z.enum(['float32', 'uint8']), shape: z.array(z.union([z.number(), z.string()])) });
const SessionSchema = z.object({ disablePrepacking: z.boolean().optional() });

export const ModelManifestSchema = z
  .object({
    id: z.string(),
    family: z.literal('resnet'),
    version: z.enum(['v1', 'v2']),
    depth: DepthSchema,
    precision: PrecisionSchema,
    input: InputSpecSchema,
    output: z.object({ name: z.string(), shape: z.tuple([z.union([z.number(), z.string()]), z.number()]) }),
    preprocess: z.object({
      resizeShorter: z.number(),
      cropHeight: z.number(),
      cropWidth: z.number(),
      mean: z.tuple([z.number(), z.number(), z.number()]),
      std: z.tuple([z.number(), z.number(), z.number()]),
    }),
    labels: z.literal('imagenet-1k'),
    sha256: z.string(),
    bytes: z.number().int(),
    weights: z.enum(['real', 'synthetic']),
    source: z.string(),
    session: SessionSchema.optional(),
    stages: z
      .array(z.object({ sha256: z.string(), bytes: z.number().int(), input: TensorSpecSchema, output: TensorSpecSchema, session: SessionSchema.optional() }))
      .optional(),
    notes: z.record(z.string(), z.unknown()).optional(),
  })
  .openapi('ModelManifest', { description: 'models/<id>/manifest.json in the bucket.' });

const ModelSummaryShape = {
  id: z.string(),
  available: z.literal(true),
  version: z.enum(['v1', 'v2']),
  depth: DepthSchema,
  precision: PrecisionSchema,
  weights: z.enum(['real', 'synthetic']),
  input: InputSpecSchema,
  bytes: z.number().int(),
  stages: z.number().int().openapi({ description: 'Split models run stage 0 here and the others in Workers of their own.' }),
  loaded: z.union([
    z.literal(false),
    z.object({
      loadedAt: z.string(),
      loadMs: z.number(),
      isolates: z
        .array(z.object({ stage: z.number().int(), isolate: z.string(), wasmHeapBytes: z.number().optional() }))
        .optional()
        .openapi({ description: 'Split models: where each stage runs, and the onnxruntime heap each isolate last reported.' }),
    }),
  ]),
};

export const ModelSummarySchema = z.object(ModelSummaryShape).openapi('ModelSummary');

export const ModelListSchema = z
  .object({
    default: z.string().openapi({ description: 'DEFAULT_MODEL.' }),
    isolate: z.object({ wasmHeapBytes: z.number().openapi({ description: "What this isolate's models cost against its 128 MB." }) }),
    models: z.array(z.union([ModelSummarySchema, z.object({ id: z.string(), available: z.literal(false), error: z.string().optional() })])),
  })
  .openapi('ModelList');

export const ModelDetailSchema = z
  .object({ ...ModelSummaryShape, default: z.boolean(), manifest: ModelManifestSchema })
  .openapi('ModelDetail');

export const PingSchema = z
  .object({ status: z.enum(['Healthy', 'Unhealthy']), reason: z.string().optional() })
  .openapi('Ping', { description: "TorchServe's health shape: Healthy when the default model is reachable in R2." });

// ---------------------------------------------------------------------------------------------
// Upload bodies. Documentation only: src/upload reads them by streaming with limits, and a
// validator would buffer or parse them first. The routes refer to these by $ref, which
// @hono/zod-openapi passes through without adding a validator.

export const UrlInputSchema = z
  .object({ url: z.url().max(2048).openapi({ example: 'https://example.com/cat.jpg' }) })
  .openapi('UrlInput', { description: 'An image the Worker fetches (https; hosts as URL_HOSTS allows), under the same size limit as an upload.' });

export const ModerateUrlInputSchema = z
  .object({
    url: z.url().max(2048),
    // No description on the field: it would replace the Policy component's own.
    policy: PolicyRequestSchema.optional(),
  })
  .openapi('ModerateUrlInput', { description: 'An image URL as for /predict, and optionally an inline `policy` (instead of one named in the path or DEFAULT_POLICY).' });

/** What the path parameters look like: the model registry decides which exist (404 otherwise). */
export const ModelIdSchema = z.string().min(1).openapi({ example: 'resnet50v1', description: 'A model id, as GET /models lists them.' });

// ---------------------------------------------------------------------------------------------
// Open Inference Protocol (KServe v2)

export const V2ParametersSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]));
const V2ShapeSchema = z.array(z.number().int().nonnegative()).max(8);

export const V2RequestInputSchema = z.object({
  name: z.string().openapi({ description: '`image` (BYTES: encoded images, base64 in JSON) or the model\'s own input (FP32 [N,3,224,224], normalized).' }),
  shape: V2ShapeSchema,
  datatype: z.string().openapi({ example: 'BYTES' }),
  parameters: V2ParametersSchema.optional().openapi({ description: '`binary_data_size`: the input\'s bytes follow the JSON (binary tensor data extension).' }),
  data: z.unknown().optional().openapi({ description: 'The tensor, flat or nested (row-major); absent with binary data.' }),
});
export const V2RequestOutputSchema = z.object({
  name: z.string(),
  parameters: V2ParametersSchema.optional().openapi({ description: '`classification`: top K as "<value>:<index>:<label>" (BYTES); `binary_data`: answer in binary.' }),
});
export const V2InferenceRequestSchema = z
  .object({
    id: z.string().optional(),
    parameters: V2ParametersSchema.optional().openapi({ description: '`binary_data_output`: every output in binary by default.' }),
    inputs: z.array(V2RequestInputSchema).min(1),
    outputs: z.array(V2RequestOutputSchema).optional(),
  })
  .openapi('V2InferenceRequest');

export const V2InferenceResponseSchema = z
  .object({
    model_name: z.string(),
    model_version: z.string(),
    id: z.string().optional(),
    parameters: z.object({ weights: z.enum(['real', 'synthetic']), notice: z.string().optional() }),
    outputs: z.array(
      z.object({
        name: z.string(),
        datatype: z.enum(['FP32', 'BYTES']),
        shape: z.array(z.number().int()),
        parameters: z.object({ binary_data_size: z.number().int() }).optional(),
        data: z.union([z.array(z.number()), z.array(z.string())]).optional(),
      }),
    ),
  })
  .openapi('V2InferenceResponse');

export const V2ServerMetadataSchema = z
  .object({ name: z.string(), version: z.string(), extensions: z.array(z.string()) })
  .openapi('V2ServerMetadata');

const V2TensorMetadataSchema = z.object({ name: z.string(), datatype: z.string(), shape: z.array(z.number().int()) });

export const V2ModelMetadataSchema = z
  .object({
    name: z.string(),
    versions: z.array(z.string()),
    platform: z.string(),
    inputs: z.array(V2TensorMetadataSchema),
    outputs: z.array(V2TensorMetadataSchema),
  })
  .openapi('V2ModelMetadata');

export const V2LiveSchema = z.object({ live: z.boolean() }).openapi('V2Live');
export const V2ServerReadySchema = z.object({ ready: z.boolean(), reason: z.string().optional() }).openapi('V2ServerReady');
export const V2ModelReadySchema = z.object({ name: z.string(), ready: z.boolean() }).openapi('V2ModelReady');

export const V2ModelParamsSchema = z.object({ model: ModelIdSchema });
export const V2VersionParamsSchema = z.object({
  model: ModelIdSchema,
  version: z.string().openapi({ description: "The model's version, as its metadata lists it (its weights' hash, shortened)." }),
});
