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
 * a stream of small ones.
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
  grant: () => void;
}

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
        this.#drain();
      };
    };
    // Nobody of this kind is queued ahead: no need to wait in line.
    if (!this.#queue.some((w) => w.kind === request.kind) && this.#fits(request)) {
      this.#take(request);
      return Promise.resolve(release());
    }
    const wait = Math.max(0, Math.min(this.options.waitMs, deadlineMs - Date.now()));
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
        ...request,
        // Called from the request that freed the room, so its timer is left alone: clearing a
        // timer from another request's context is unreliable in workerd, and this request's own
        // pending timer is what keeps the runtime from taking it for hung until it resumes.
        // The timer finds the waiter gone from the queue and does nothing.
        grant: () => resolve(release()),
      };
      const timer = setTimeout(() => {
        const i = this.#queue.indexOf(waiter);
        if (i < 0) return; // granted meanwhile
        this.#queue.splice(i, 1);
        this.#drain(); // a large waiter leaving may unblock smaller ones behind it
        const what =
          request.kind === 'slot'
            ? `all ${this.options.maxInFlight} request slots of this isolate stayed busy`
            : `memory for ${request.kind === 'upload' ? 'the upload' : 'decoding'} stayed taken (${mib(this.#reserved)} reserved, model ${mib(this.options.baseline())}, budget ${mib(this.options.budgetBytes)})`;
        reject(overloaded(`server busy: ${what} for ${Math.round(wait)} ms; retry shortly`, Math.max(1, Math.ceil(this.options.waitMs / 1000))));
      }, wait);
      this.#queue.push(waiter);
    });
  }

  /** Grants queued waiters in order, each kind first come first served. */
  #drain(): void {
    const blocked = new Set<Waiter['kind']>();
    for (let i = 0; i < this.#queue.length; ) {
      const w = this.#queue[i]!;
      if (!blocked.has(w.kind) && this.#fits(w)) {
        this.#queue.splice(i, 1);
        this.#take(w);
        w.grant();
      } else {
        blocked.add(w.kind);
        i++;
      }
    }
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
