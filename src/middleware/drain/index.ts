/**
 * Reads and drops what is left of a request body that the answer did not need, before the
 * answer goes out: admission control's 503, a 401, a 404 or a 400 given before the upload was
 * read.
 *
 * Why: an HTTP/1.1 server that answers before reading the body cannot keep the connection (the
 * rest of the body would be read as the next request), so workerd closes it; a client still
 * sending meets a reset and, as Node's fetch does, reports "fetch failed" instead of the answer
 * it was sent. Measured: 16 concurrent 15.6 MB PNG uploads, 7 of them answered 503 by admission
 * control, came back as 7 "fetch failed" (bench/heap-burst.ts --no-inspector); the next request
 * on a kept-alive connection that is being closed is lost the same way. Read to the end, the
 * connection stays usable and every client gets its answer.
 *
 * Bounded: a body announced over the body limit is not drained (it is refused with 413 as it is,
 * and the connection closes), nor one that turns out longer than the limit, nor past `timeoutMs`.
 * Reading holds one buffer (or one chunk) at a time, so draining costs the isolate no memory to
 * speak of.
 */
import type { Context, MiddlewareHandler } from 'hono';

export interface DrainOptions {
  /** Bytes a body may have to be drained (the body limit). */
  maxBytes: (c: Context) => number;
  /** Longest time spent draining one body. */
  timeoutMs: (c: Context) => number;
}

/** The one buffer a byte stream is drained through. */
const DRAIN_BUFFER_BYTES = 64 * 1024;

/**
 * Reads `body` to its end and drops it: at most `maxBytes`, until `deadline` (epoch ms). A byte
 * stream (workerd's request bodies are) is read into one buffer, over and over: read chunk by
 * chunk, the twelve 15.6 MB uploads refused in a burst of PNGs left ~185 MiB of chunks for the
 * collector inside one task (bench/heap-burst.ts --gc-trace), all of it counted against the
 * isolate until V8 got round to it.
 */
export async function drainBody(body: ReadableStream<Uint8Array>, maxBytes: number, deadline: number): Promise<'drained' | 'too-long' | 'timed-out' | 'failed'> {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = body.getReader({ mode: 'byob' });
  } catch {
    // not a byte stream: chunk by chunk
  }
  const reader = byob ?? body.getReader();
  let buffer = new Uint8Array(byob ? DRAIN_BUFFER_BYTES : 0);
  const read = async (): Promise<{ done: boolean; bytes: number }> => {
    if (!byob) {
      const next = await (reader as ReadableStreamDefaultReader<Uint8Array>).read();
      return { done: next.done, bytes: next.value?.byteLength ?? 0 };
    }
    const next = await byob.read(buffer);
    // The buffer was handed to the stream and comes back (detached from the old view) in `value`.
    if (next.value) buffer = new Uint8Array(next.value.buffer);
    return { done: next.done, bytes: next.value?.byteLength ?? 0 };
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<'timed-out'>((resolve) => {
    timer = setTimeout(() => resolve('timed-out'), Math.max(0, deadline - Date.now()));
  });
  let seen = 0;
  try {
    for (;;) {
      const next = await Promise.race([read(), timeout]);
      if (next === 'timed-out') return next;
      if (next.done) return 'drained';
      seen += next.bytes;
      if (seen > maxBytes) return 'too-long';
    }
  } catch {
    return 'failed'; // the client went away, or the buffer could not come back: nothing left to drain
  } finally {
    clearTimeout(timer);
    reader.cancel().catch(() => undefined);
  }
}

export function drainUnreadBody(options: DrainOptions): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const request = c.req.raw;
    if (!request.body || request.bodyUsed) return;
    let maxBytes: number;
    let timeoutMs: number;
    try {
      maxBytes = options.maxBytes(c);
      timeoutMs = options.timeoutMs(c);
    } catch {
      return; // a configuration that does not parse: the answer (a 500 saying so) goes out as it is
    }
    const announced = c.req.header('content-length');
    if (announced !== undefined && !(Number(announced) <= maxBytes)) return;
    await drainBody(request.body, maxBytes, Date.now() + timeoutMs);
  };
}
