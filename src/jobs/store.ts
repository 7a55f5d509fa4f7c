/**
 * Job records in MODELS under jobs/<id>.json (never in UPLOADS: a write there would trigger a
 * new job). Every write is conditional on the version read (R2 `onlyIf` on the etag, or "no
 * object yet"), so two deliveries of one message racing each other cannot lose a write, and
 * the first final write (done or failed) wins: a final record is never replaced.
 */
import { isFinal, type JobRecord } from './types';

export const JOB_PREFIX = 'jobs/';
export const jobKey = (id: string) => `${JOB_PREFIX}${id}.json`;
export const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Versioned {
  record: JobRecord;
  etag: string;
}

export async function readJob(bucket: R2Bucket, id: string): Promise<Versioned | undefined> {
  const object = await bucket.get(jobKey(id));
  if (!object) return undefined;
  return { record: JSON.parse(await object.text()) as JobRecord, etag: object.etag };
}

/**
 * Applies `change` to the current record (undefined when there is none) and writes the result
 * only if nobody wrote in between; on a conflict it reads again and re-applies. `change`
 * returns undefined to leave the record as it is. Final records are never changed except
 * by `allowFinal` changes (webhook delivery state), and never their outcome.
 */
export async function updateJob(
  bucket: R2Bucket,
  id: string,
  change: (current: JobRecord | undefined) => JobRecord | undefined,
  options: { allowFinal?: boolean } = {},
): Promise<JobRecord | undefined> {
  for (let tries = 0; tries < 8; tries++) {
    const current = await readJob(bucket, id);
    if (isFinal(current?.record) && !options.allowFinal) return current!.record;
    const next = change(current?.record);
    if (next === undefined) return current?.record;
    if (isFinal(current?.record)) {
      // Only the delivery state may change once the outcome is written.
      const was = current!.record;
      Object.assign(next, { status: was.status, reason: was.reason, error: was.error, result: was.result, completedAt: was.completedAt });
    }
    const onlyIf: R2Conditional = current ? { etagMatches: current.etag } : { etagDoesNotMatch: '*' };
    const written = await bucket.put(jobKey(id), JSON.stringify(next), { onlyIf, httpMetadata: { contentType: 'application/json' } });
    // null: the precondition failed, someone wrote first; read their version and decide again.
    if (written !== null) return next;
  }
  throw new Error(`job ${id}: too many concurrent writes to its record`);
}
