/**
 * Type-level checks, no runtime code: the documented schemas and the types the answers are
 * built to (src/answers/types.ts, the manifest) agree both
 * ways, so that a field added, removed or retyped on either side fails `tsc`.
 */
import type { z } from '@hono/zod-openapi';
import type { ErrorBody, ErrorType, JobBody, JobCreatedBody, ModerateBody, PredictBody } from '../answers/types';
import type { ModelManifest } from '../models/manifest';
import type { Policy } from '../policies/schema';
import type * as S from './schemas';

/** `true` only when A and B are assignable to each other. */
type Agree<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const agree = <T extends true>(_: T) => {};

agree<Agree<z.infer<typeof S.PredictBodySchema>, PredictBody>>(true);
agree<Agree<z.infer<typeof S.ModerateBodySchema>, ModerateBody>>(true);
agree<Agree<z.infer<typeof S.ErrorTypeSchema>, ErrorType>>(true);
agree<Agree<z.infer<typeof S.ErrorBodySchema>, ErrorBody>>(true);
agree<Agree<z.infer<typeof S.JobSchema>, JobBody>>(true);
agree<Agree<z.infer<typeof S.JobAcceptedSchema>, JobCreatedBody>>(true);
agree<Agree<z.infer<typeof S.ModelManifestSchema>, ModelManifest>>(true);
agree<Agree<z.infer<typeof S.PolicyRequestSchema>, Policy>>(true);
