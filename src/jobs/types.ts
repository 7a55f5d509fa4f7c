/**
 * What the jobs feature stores and sends: queue messages (ours and R2's event notifications),
 * the job record in MODELS under jobs/<id>.json, and the webhook body.
 */
import type { JobBody, JobStatus } from '../answers/types';

export type { DeliveryState, JobError, JobStatus } from '../answers/types';

/** Where a job's image is: an object in UPLOADS, or a URL fetched with URL input's rules. */
export type JobSource = { key: string } | { url: string };

/** Our message, sent by POST /jobs. Everything the consumer needs travels in it (< 128 KB). */
export interface JobMessage {
  type: 'job';
  id: string;
  source: JobSource;
  /** A stored policy's name or an inline policy (checked when the job was posted). */
  policy?: string | object;
  model?: string;
  callback?: string;
  metadata?: unknown;
  /** Host names the Worker was reached on: refused as URL targets, as for URL input. */
  selfHosts?: string[];
  createdAt: string;
}

/** The body of an R2 event notification (https://developers.cloudflare.com/r2/buckets/event-notifications/). */
export interface R2Notification {
  account: string;
  action: string;
  bucket: string;
  object: { key: string; size?: number; eTag?: string };
  eventTime: string;
  copySource?: { bucket: string; object: string };
}

/** jobs/<id>.json in MODELS: what GET /jobs/:id shows, and `callback`, which stays private (it may carry the receiver's token). */
export interface JobRecord extends JobBody {
  callback?: string;
}

export const FINAL: ReadonlySet<JobStatus> = new Set(['done', 'failed']);
export const isFinal = (record: JobRecord | undefined): boolean => record !== undefined && FINAL.has(record.status);

/**
 * The webhook body: only what the first final write fixed, so that every re-delivery of a job
 * sends the same JSON (its signature's timestamp aside).
 */
export function webhookBody(record: JobRecord): string {
  return JSON.stringify({
    id: record.id,
    status: record.status,
    ...(record.reason !== undefined ? { reason: record.reason, error: record.error } : {}),
    ...(record.result !== undefined ? { result: record.result } : {}),
    ...(record.metadata !== undefined ? { metadata: record.metadata } : {}),
    createdAt: record.createdAt,
    completedAt: record.completedAt,
  });
}

/** What GET /jobs/:id answers: the record without its private fields. */
export function publicView(record: JobRecord): JobBody {
  const { callback: _callback, ...rest } = record;
  return rest;
}
