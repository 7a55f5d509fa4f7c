/**
 * Job ids: random UUIDs for POST /jobs, and for an R2 notification a UUID version 5 (SHA-1,
 * RFC 9562) of its bucket, key and eTag, so that a repeated notification of the same object
 * version is the same job (one result, one Idempotency-Key) and a new version is a new job.
 */

/** Namespace of notification job ids (a fixed random UUID). */
const NAMESPACE = 'b3c1f6e2-5d0a-4e7b-9a41-6f2d8c3e7a10';

export const newJobId = (): string => crypto.randomUUID();

export async function notificationJobId(bucket: string, key: string, eTag: string): Promise<string> {
  // Newlines cannot appear in a bucket name or an eTag, and the key is last: the name is unambiguous.
  return uuidV5(NAMESPACE, `${bucket}\n${eTag}\n${key}`);
}

/** RFC 9562 UUID version 5: SHA-1 of the namespace's 16 bytes and the name's UTF-8. */
export async function uuidV5(namespace: string, name: string): Promise<string> {
  const ns = namespace
    .replace(/-/g, '')
    .match(/../g)!
    .map((h) => parseInt(h, 16));
  const bytes = new TextEncoder().encode(name);
  const input = new Uint8Array(16 + bytes.byteLength);
  input.set(ns);
  input.set(bytes, 16);
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-1', input)).slice(0, 16);
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = [...hash].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
