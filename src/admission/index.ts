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
 * A waiter's timer fires only when the isolate's one thread is free, and under a burst of large
 * images it is busy for seconds at a time: a 503 decided by the timer alone came up to 7 s after
 * `waitMs` (bench/heap-burst.ts). So a request that cannot be admitted at once is also refused at
 * once when the line ahead of it predictably lasts longer than its wait: each kind of holder is
 * taken to hold for as long as its kind has lately (an average of measured holds), and the line
 * is played forward from who holds what now.
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
/** Holds of a kind measured before its average predicts anything, and the weight of the newest. */
const MIN_HOLDS = 3;
const HOLD_WEIGHT = 0.25;

/** Something acquired and not yet given back: a slot, or reserved bytes. */
interface Hold {
  kind: Waiter['kind'];
  bytes: number;
  since: number;
}

const MiB = 1024 * 1024;
const mib = (bytes: number) => `${Math.ceil(bytes / MiB)} MiB`;

/** 503 with the type `overloaded`; the Retry-After header is set by `errorResponse`. */
export function overloaded(message: string, retryAfterSeconds: number): ApiError {
  return new ApiError('overloaded', message, { retryAfter: retryAfterSeconds });
}

export class Admission {
  readonly #queue: Waiter[] = [];
  /** Everything held now: the slots in flight and the reserved bytes are counted from it. */
  readonly #holds = new Set<Hold>();
  /** How long each kind has lately been held: a moving average, and how many holds it has seen. */
  readonly #held: Record<Waiter['kind'], { ms: number; n: number }> = {
    slot: { ms: 0, n: 0 },
    memory: { ms: 0, n: 0 },
    upload: { ms: 0, n: 0 },
  };

  constructor(readonly options: AdmissionOptions) {}

  get #inFlight(): number {
    let n = 0;
    for (const h of this.#holds) if (h.kind === 'slot') n++;
    return n;
  }

  get #reserved(): number {
    let bytes = 0;
    for (const h of this.#holds) bytes += h.bytes;
    return bytes;
  }

  /** Requests in flight and decode bytes reserved, for /models and the tests. */
  get state(): { inFlight: number; reservedBytes: number; waiting: number } {
    return { inFlight: this.#inFlight, reservedBytes: this.#reserved, waiting: this.#queue.length };
  }

  /**
   * A request slot. Resolves at once when one is free, else when one frees up within
   * `waitMs` (or `deadlineMs`, if sooner); else rejects with 503 overloaded.
   */
  enter(deadlineMs = Infinity): Promise<Release> {
    return this.#acquire({ kind: 'slot', bytes: 0 }, deadlineMs);
  }

  /**
   * Decode memory for one image. An image that could not fit even in an idle isolate (beside
   * this model) is refused at once with 413, since waiting cannot help it.
   */
  reserve(bytes: number, deadlineMs = Infinity): Promise<Release> {
    this.#refuseBeyondRoom(bytes, 'image needs', 'to decode');
    return this.#acquire({ kind: 'memory', bytes }, deadlineMs);
  }

  /**
   * Memory for a request's upload, taken once the request has its slot and before the body is
   * read: bodies live in the isolate too, and 8 slots of 15 MB PNGs are 120 MB. Queued apart
   * from decode memory, so requests already reading their images finish first.
   */
  reserveUpload(bytes: number, deadlineMs = Infinity): Promise<Release> {
    this.#refuseBeyondRoom(bytes, 'upload needs', 'to hold');
    return this.#acquire({ kind: 'upload', bytes }, deadlineMs);
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

  /** Takes what `w` asks for; the hold is given back (and its length learnt) by `#giveBack`. */
  #take(w: Pick<Waiter, 'kind' | 'bytes'>): Hold {
    const hold: Hold = { kind: w.kind, bytes: w.bytes, since: Date.now() };
    this.#holds.add(hold);
    return hold;
  }

  #giveBack(hold: Hold): void {
    if (!this.#holds.delete(hold)) return;
    const held = this.#held[hold.kind];
    const ms = Date.now() - hold.since;
    held.ms = held.n === 0 ? ms : held.ms + HOLD_WEIGHT * (ms - held.ms);
    held.n++;
  }

  /**
   * How long until `request` would be admitted, if whatever is held now and everything queued
   * ahead of it holds as long as its kind has lately; undefined until each kind involved has
   * been measured. Slots and memory are separate lines; waiters queue per kind.
   */
  #predictWait(request: Pick<Waiter, 'kind' | 'bytes'>, ahead: readonly Waiter[]): number | undefined {
    const slots = request.kind === 'slot';
    const holdMs = (kind: Waiter['kind']) => (this.#held[kind].n >= MIN_HOLDS ? this.#held[kind].ms : undefined);
    const now = Date.now();
    const held: { bytes: number; until: number }[] = [];
    for (const h of this.#holds) {
      if ((h.kind === 'slot') !== slots) continue;
      const ms = holdMs(h.kind);
      if (ms === undefined) return undefined;
      // A hold older than its kind's average is taken to end now: it says nothing about when.
      held.push({ bytes: h.bytes, until: Math.max(now, h.since + ms) });
    }
    const fits = (bytes: number) =>
      slots
        ? held.length < this.options.maxInFlight
        : this.options.baseline() + held.reduce((sum, h) => sum + h.bytes, 0) + bytes <= this.options.budgetBytes;
    let t = now;
    for (const w of [...ahead, request]) {
      while (!fits(w.bytes)) {
        if (held.length === 0) return undefined;
        let first = 0;
        for (let i = 1; i < held.length; i++) if (held[i]!.until < held[first]!.until) first = i;
        t = Math.max(t, held.splice(first, 1)[0]!.until);
      }
      if (w === request) break;
      const ms = holdMs(w.kind);
      if (ms === undefined) return undefined;
      held.push({ bytes: w.bytes, until: t + ms });
    }
    return t - now;
  }

  #acquire(request: Pick<Waiter, 'kind' | 'bytes'>, deadlineMs: number): Promise<Release> {
    const release = (hold: Hold): Release => () => this.#giveBack(hold);
    // Nobody of this kind is queued ahead: no need to wait in line.
    if (!this.#ahead(request.kind, null) && this.#fits(request)) {
      return Promise.resolve(release(this.#take(request)));
    }
    const wait = Math.max(0, Math.min(this.options.waitMs, deadlineMs - Date.now()));
    const now = Date.now();
    const ahead = this.#queue.filter((w) => w.kind === request.kind && now - w.until <= DEAD_AFTER_MS);
    const predicted = this.#predictWait(request, ahead);
    if (predicted !== undefined && predicted > wait) {
      return Promise.reject(
        overloaded(
          `server busy: ${this.#busyWith(request.kind, 'are')} and ${ahead.length} more wait; at recent rates this request would wait about ${Math.round(predicted)} ms, past the ${Math.round(wait)} ms it may; retry shortly`,
          Math.max(1, Math.ceil(predicted / 1000)),
        ),
      );
    }
    const waiter: Waiter = { ...request, until: Date.now() + wait };
    this.#queue.push(waiter);
    return new Promise<Release>((resolve, reject) => {
      const look = (): void => {
        if (!this.#ahead(waiter.kind, waiter) && this.#fits(waiter)) {
          this.#leave(waiter);
          resolve(release(this.#take(waiter)));
          return;
        }
        const left = waiter.until - Date.now();
        if (left > 0) {
          setTimeout(look, Math.min(POLL_MS, left));
          return;
        }
        this.#leave(waiter);
        reject(
          overloaded(`server busy: ${this.#busyWith(request.kind, 'stayed')} for ${Math.round(wait)} ms; retry shortly`, Math.max(1, Math.ceil(this.options.waitMs / 1000))),
        );
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

  /** What the request waits for, as it stands (`are`) or as it stayed (`stayed`). */
  #busyWith(kind: Waiter['kind'], verb: 'are' | 'stayed'): string {
    return kind === 'slot'
      ? `all ${this.options.maxInFlight} request slots of this isolate ${verb} busy`
      : `memory for ${kind === 'upload' ? 'the upload' : 'decoding'} ${verb === 'are' ? 'is' : verb} taken (${mib(this.#reserved)} reserved, model ${mib(this.options.baseline())}, budget ${mib(this.options.budgetBytes)})`;
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
