/**
 * Admission control for one isolate: a bound on requests in flight and a memory budget.
 *
 * An isolate has 128 MB for everything its concurrent requests do, and inference is
 * single-threaded: past a few requests in flight, more only queue inside the isolate (each
 * holding its upload and its decode) and every answer gets slower. So a request waits for a
 * slot at most `waitMs` and otherwise gets a fast 503 `overloaded` with Retry-After, which a
 * client or a load balancer can act on; and a decode starts only when the model's measured
 * wasm heap plus the decode memory already reserved by other requests plus its own fit the
 * budget. Waiters are served first come, first served, so a large decode is not starved by
 * a stream of small ones; each waits on its own timer (POLL_MS), never woken by another request.
 *
 * Everything is synchronous bookkeeping plus timers; nothing here touches a request, so it
 * is shared by all requests of the isolate (one instance per configuration).
 */
import { ApiError, tooLarge } from '../errors';

export interface AdmissionOptions {
  /** Requests allowed in flight at once. */
  maxInFlight: number;
  /** Bytes that the model heap plus reserved decode memory must stay under. */
  budgetBytes: number;
  /** Longest wait for a slot or for memory before a 503. */
  waitMs: number;
  /** Memory already taken outside the reservations: onnxruntime's heap. */
  baseline: () => number;
}

/** Gives back what was acquired; calling it twice is harmless. */
export type Release = () => void;

interface Waiter {
  /** `upload`: memory for a request's body, queued apart so it never holds up admitted decodes. */
  kind: 'slot' | 'memory' | 'upload';
  bytes: number;
  /** When the waiter gives up (epoch ms). One still queued well past it belongs to a request the runtime dropped. */
  until: number;
}

/**
 * How often a waiter looks again. Waiters poll from their own timers rather than being woken by
 * the request that frees the room: in workerd a promise resolved from another request's context
 * is delivered unreliably (the waiting request can be canceled as hung), and a request the
 * runtime drops while queued must not be handed a slot it will never give back.
 */
export const POLL_MS = 10;
/** A queued waiter this long past its give-up time is taken for dropped and skipped. */
const DEAD_AFTER_MS = 1000;

const MiB = 1024 * 1024;
const mib = (bytes: number) => `${Math.ceil(bytes / MiB)} MiB`;

/** 503 with the type `overloaded`; the Retry-After header is set by `errorResponse`. */
export function overloaded(message: string, retryAfterSeconds: number): ApiError {
  return new ApiError('overloaded', message, { retryAfter: retryAfterSeconds });
}

export class Admission {
  #inFlight = 0;
  #reserved = 0;
  readonly #queue: Waiter[] = [];

  constructor(readonly options: AdmissionOptions) {}

  /** Requests in flight and decode bytes reserved, for /models and the tests. */
  get state(): { inFlight: number; reservedBytes: number; waiting: number } {
    return { inFlight: this.#inFlight, reservedBytes: this.#reserved, waiting: this.#queue.length };
  }

  /**
   * A request slot. Resolves at once when one is free, else when one frees up within
   * `waitMs` (or `deadlineMs`, if sooner); else rejects with 503 overloaded.
   */
  enter(deadlineMs = Infinity): Promise<Release> {
    return this.#acquire({ kind: 'slot', bytes: 0 }, deadlineMs, () => {
      this.#inFlight--;
    });
  }

  /**
   * Decode memory for one image. An image that could not fit even in an idle isolate (beside
   * this model) is refused at once with 413, since waiting cannot help it.
   */
  reserve(bytes: number, deadlineMs = Infinity): Promise<Release> {
    this.#refuseBeyondRoom(bytes, 'image needs', 'to decode');
    return this.#acquire({ kind: 'memory', bytes }, deadlineMs, () => {
      this.#reserved -= bytes;
    });
  }

  /**
   * Memory for a request's upload, taken once the request has its slot and before the body is
   * read: bodies live in the isolate too, and 8 slots of 15 MB PNGs are 120 MB. Queued apart
   * from decode memory, so requests already reading their images finish first.
   */
  reserveUpload(bytes: number, deadlineMs = Infinity): Promise<Release> {
    this.#refuseBeyondRoom(bytes, 'upload needs', 'to hold');
    return this.#acquire({ kind: 'upload', bytes }, deadlineMs, () => {
      this.#reserved -= bytes;
    });
  }

  /** Memory an idle isolate has beside what it holds between requests. */
  get room(): number {
    return Math.max(0, this.options.budgetBytes - this.options.baseline());
  }

  #refuseBeyondRoom(bytes: number, what: string, why: string): void {
    const room = this.options.budgetBytes - this.options.baseline();
    if (bytes > room) {
      throw tooLarge(
        `${what} ${mib(bytes)} ${why}; beside the ${mib(this.options.baseline())} the model and decoders hold, this isolate's memory budget of ${mib(this.options.budgetBytes)} leaves ${mib(Math.max(0, room))}`,
      );
    }
  }

  #fits(w: Pick<Waiter, 'kind' | 'bytes'>): boolean {
    if (w.kind === 'slot') return this.#inFlight < this.options.maxInFlight;
    return this.options.baseline() + this.#reserved + w.bytes <= this.options.budgetBytes;
  }

  #take(w: Pick<Waiter, 'kind' | 'bytes'>): void {
    if (w.kind === 'slot') this.#inFlight++;
    else this.#reserved += w.bytes;
  }

  #acquire(request: Pick<Waiter, 'kind' | 'bytes'>, deadlineMs: number, giveBack: () => void): Promise<Release> {
    const release = (): Release => {
      let done = false;
      return () => {
        if (done) return;
        done = true;
        giveBack();
      };
    };
    // Nobody of this kind is queued ahead: no need to wait in line.
    if (!this.#ahead(request.kind, null) && this.#fits(request)) {
      this.#take(request);
      return Promise.resolve(release());
    }
    const wait = Math.max(0, Math.min(this.options.waitMs, deadlineMs - Date.now()));
    const waiter: Waiter = { ...request, until: Date.now() + wait };
    this.#queue.push(waiter);
    return new Promise<Release>((resolve, reject) => {
      const look = (): void => {
        if (!this.#ahead(waiter.kind, waiter) && this.#fits(waiter)) {
          this.#leave(waiter);
          this.#take(waiter);
          resolve(release());
          return;
        }
        const left = waiter.until - Date.now();
        if (left > 0) {
          setTimeout(look, Math.min(POLL_MS, left));
          return;
        }
        this.#leave(waiter);
        const what =
          request.kind === 'slot'
            ? `all ${this.options.maxInFlight} request slots of this isolate stayed busy`
            : `memory for ${request.kind === 'upload' ? 'the upload' : 'decoding'} stayed taken (${mib(this.#reserved)} reserved, model ${mib(this.options.baseline())}, budget ${mib(this.options.budgetBytes)})`;
        reject(overloaded(`server busy: ${what} for ${Math.round(wait)} ms; retry shortly`, Math.max(1, Math.ceil(this.options.waitMs / 1000))));
      };
      setTimeout(look, Math.min(POLL_MS, wait));
    });
  }

  /** Whether a live waiter of `kind` is queued before `me` (anywhere, for null). Drops dead ones. */
  #ahead(kind: Waiter['kind'], me: Waiter | null): boolean {
    const now = Date.now();
    for (let i = 0; i < this.#queue.length; ) {
      const w = this.#queue[i]!;
      if (w === me) return false;
      if (now - w.until > DEAD_AFTER_MS) {
        this.#queue.splice(i, 1); // its request was dropped by the runtime: its timer never ran
        continue;
      }
      if (w.kind === kind) return true;
      i++;
    }
    return false;
  }

  #leave(waiter: Waiter): void {
    const i = this.#queue.indexOf(waiter);
    if (i >= 0) this.#queue.splice(i, 1);
  }
}

/**
 * What reading a request's body costs the isolate: its announced length (else the body limit,
 * which reading enforces), twice over for multipart, where the parsed parts are held while each
 * file is copied out (an estimate; bench/heap-burst.ts measures the isolate under such bursts).
 */
export function uploadBytes(contentType: string | undefined, contentLength: string | undefined, maxBodyBytes: number): { bytes: number; announced: boolean } {
  const announced = contentLength !== undefined && /^\d+$/.test(contentLength);
  const length = announced ? Math.min(Number(contentLength), maxBodyBytes) : maxBodyBytes;
  return { bytes: /^multipart\/form-data/i.test(contentType ?? '') ? 2 * length : length, announced };
}

/**
 * Runs `promise` but gives up at `deadlineMs` (epoch ms) with a 503: for waits on things
 * outside this request's control, like a model session another request is creating.
 */
export async function withDeadline<T>(promise: Promise<T>, deadlineMs: number, what: string): Promise<T> {
  const left = deadlineMs - Date.now();
  if (left === Infinity) return promise;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(overloaded(`gave up waiting for ${what} after the request's time limit`, 1)), Math.max(0, left));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** What the admission middleware (src/app.ts) hands to the routes behind it, as Hono variables. */
export interface Admitted {
  admission: Admission;
  /** Epoch ms after which the request stops waiting for anything (REQUEST_TIMEOUT_MS). */
  deadline: number;
}

const instances = new WeakMap<object, Admission>();

/** One Admission per configuration object, i.e. per isolate (see src/config.ts). */
export function admissionFor(config: object, options: () => AdmissionOptions): Admission {
  let admission = instances.get(config);
  if (!admission) {
    admission = new Admission(options());
    instances.set(config, admission);
  }
  return admission;
}
