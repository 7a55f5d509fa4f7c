/**
 * The body of `POST /jobs`, checked with zod 4: `{ key } | { url }`, optional `policy` (a
 * name or an inline policy, at most 16 KB of JSON), `model`, `callback` and `metadata` (any
 * JSON, at most 4 KB, echoed back). The route validates with it (src/openapi), which reports
 * every issue at once, naming its field.
 */
import { z } from 'zod';
import { MAX_CALLBACK_LENGTH } from '../webhooks';

export const MAX_POLICY_BYTES = 16 * 1024;
export const MAX_METADATA_BYTES = 4 * 1024;

const jsonBytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value) ?? '').byteLength;

export const JobRequestSchema = z
  .strictObject({
    key: z.string().min(1).max(1024).optional(),
    url: z.string().min(1).max(2048).optional(),
    policy: z
      .union([z.string().min(1).max(64), z.record(z.string(), z.unknown())])
      .optional()
      .refine((p) => p === undefined || jsonBytes(p) <= MAX_POLICY_BYTES, `must be at most ${MAX_POLICY_BYTES} bytes of JSON`),
    model: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be a model id, e.g. "resnet18v1"')
      .optional(),
    callback: z.string().min(1).max(MAX_CALLBACK_LENGTH).optional(),
    metadata: z
      .unknown()
      .refine((m) => m === undefined || jsonBytes(m) <= MAX_METADATA_BYTES, `must be at most ${MAX_METADATA_BYTES} bytes of JSON`)
      .optional(),
  })
  .refine((b) => (b.key === undefined) !== (b.url === undefined), { message: 'send exactly one of "key" (an object in the uploads bucket) and "url"', path: [] });

export type JobRequest = z.infer<typeof JobRequestSchema>;
