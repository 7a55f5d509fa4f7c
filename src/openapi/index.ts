/**
 * The OpenAPI 3.1 description of the API, generated from the zod schemas the routes validate
 * with (./schemas.ts), served at GET /openapi.json with a reference page at GET /docs.
 * Clients may import the schemas and their inferred types from here.
 */
import type { z } from '@hono/zod-openapi';
import type * as S from './schemas';

export * from './schemas';
export { errors, v2Errors, validationHook, type ErrorStatus } from './responses';
export { DOC_METHODS, DOC_PATHS, DOCS_PATH, DOCUMENT_PATH, docRoutes, OPEN, openApiDocument } from './document';
export { answerHeaders, imageBody, moderateBody, registerUploadSchemas } from './uploads';

// The bodies as TypeScript types, for clients (the answers are built to these: ./check.ts).
export type ErrorBody = z.infer<typeof S.ErrorBodySchema>;
export type V2Error = z.infer<typeof S.V2ErrorSchema>;
export type PredictAnswer = z.infer<typeof S.PredictBodySchema>;
export type ModelServerAnswer = z.infer<typeof S.ModelServerAnswerSchema>;
export type TorchServeAnswer = z.infer<typeof S.TorchServeAnswerSchema>;
export type ModerateAnswer = z.infer<typeof S.ModerateBodySchema>;
export type Policy = z.infer<typeof S.PolicyRequestSchema>;
export type PolicyList = z.infer<typeof S.PolicyListSchema>;
export type PolicyDetail = z.infer<typeof S.PolicyDetailSchema>;
export type Concept = z.infer<typeof S.ConceptSchema>;
export type JobRequest = z.input<typeof S.JobRequestBodySchema>;
export type JobAccepted = z.infer<typeof S.JobAcceptedSchema>;
export type Job = z.infer<typeof S.JobSchema>;
export type ModelList = z.infer<typeof S.ModelListSchema>;
export type ModelDetail = z.infer<typeof S.ModelDetailSchema>;
export type Ping = z.infer<typeof S.PingSchema>;
export type UrlInput = z.infer<typeof S.UrlInputSchema>;
export type V2InferenceRequest = z.input<typeof S.V2InferenceRequestSchema>;
export type V2InferenceResponse = z.infer<typeof S.V2InferenceResponseSchema>;
export type V2ServerMetadata = z.infer<typeof S.V2ServerMetadataSchema>;
export type V2ModelMetadata = z.infer<typeof S.V2ModelMetadataSchema>;
export type V2ModelReady = z.infer<typeof S.V2ModelReadySchema>;
export type V2ServerReady = z.infer<typeof S.V2ServerReadySchema>;
