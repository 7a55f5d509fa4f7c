/**
 * The fuzzing harness shared by every target (see test/fuzz/README.md).
 *
 * A target is a fast-check arbitrary of inputs (mostly: a corpus file and a list of mutations)
 * and a `check` that runs one input through our parser. The invariant, the same for all:
 *
 *   - it returns normally (and what it returns is consistent: pixels of the header's size), or
 *     it throws an ApiError with a 4xx status (src/errors.ts); never any other exception;
 *   - it takes at most `timeBoundMs` for the input;
 *   - a decoder allocates at most what its own accounting says (`planDecode(...).memoryBytes`),
 *     measured by counting the typed-array and ArrayBuffer allocations made while it runs
 *     (see `countAllocations`).
 *
 * Everything here is deterministic given the fast-check seed: a failure reproduces from its
 * seed, and its input is written to test/fuzz/regressions/ to be replayed by the tests.
 */
import fc from 'fast-check';

// ---- inputs ----------------------------------------------------------------------------------

/** One fuzz input: the bytes a target reads, and how they were made (for the failure report). */
export interface Case {
  bytes: Uint8Array;
  how: string;
}

/** What a check tells the harness about a run that kept the invariant. */
export interface Outcome {
  /** 'ok' for a normal return, else the ApiError's status. */
  result: 'ok' | number;
  /** Set when a 4xx ApiError carried a TypeError, RangeError... as its cause (a bug, or an allocation, masked as a refusal). */
  masked?: string;
}

export interface Target {
  name: string;
  /** Inputs to try. */
  arbitrary: fc.Arbitrary<Case>;
  /** The corpus the arbitrary mutates, for the coverage-guided run to add to (mutation targets). */
  corpus?: Corpus;
  /** Runs one input; throws a Violation when the result breaks the invariant (not for 4xx ApiErrors). */
  check(bytes: Uint8Array): Promise<void> | void;
  /**
   * Milliseconds an input may take (on an idle core; the runs allow a factor for shared
   * machines): a constant, or a function of the input (the decoders: work linear in the pixels
   * the header claims is by design, so the bound grows with them; see targets/decode.ts).
   */
  timeBoundMs: number | ((bytes: Uint8Array) => number);
}

/** A broken invariant found by a check (wrong output size, allocations past the accounting...). */
export class Violation extends Error {
  override name = 'Violation';
}

/** A failed input, as the runs report and save it. */
export interface Failure {
  target: string;
  kind: 'exception' | 'status' | 'time' | 'invariant';
  message: string;
  stack?: string;
  how: string;
  bytes: Uint8Array;
  ms: number;
}

interface ApiErrorLike {
  name: string;
  status: number;
  message: string;
  stack?: string;
  cause?: unknown;
}

/** Errors the JS engine throws for bugs (a decoder's own refusals are ApiErrors or plain Errors). */
const ENGINE_ERRORS = new Set(['TypeError', 'RangeError', 'ReferenceError', 'SyntaxError']);

const isApiError = (err: unknown): err is ApiErrorLike =>
  err instanceof Error && err.name === 'ApiError' && typeof (err as unknown as ApiErrorLike).status === 'number';

/**
 * Runs one input against the invariant. Returns null when it held, else the failure. `slack`
 * multiplies the time bound (the CI run shares 2 cores with the rest of the suite).
 */
export async function runCase(target: Target, c: Case, slack = 1): Promise<{ failure: Failure | null; outcome: Outcome; ms: number }> {
  const t0 = performance.now();
  let outcome: Outcome = { result: 'ok' };
  let failure: Omit<Failure, 'target' | 'how' | 'bytes' | 'ms'> | null = null;
  try {
    await target.check(c.bytes);
  } catch (err) {
    if (err instanceof Violation) failure = { kind: 'invariant', message: err.message, stack: err.stack };
    else if (isApiError(err)) {
      if (err.status >= 400 && err.status < 500) {
        outcome = { result: err.status };
        const cause = err.cause;
        if (cause instanceof Error && ENGINE_ERRORS.has(cause.name)) outcome.masked = `${cause.name}: ${cause.message}`;
      } else failure = { kind: 'status', message: `ApiError ${err.status}: ${err.message}`, stack: err.stack };
    } else if (err instanceof Error) failure = { kind: 'exception', message: `${err.name}: ${err.message}`, stack: err.stack };
    else failure = { kind: 'exception', message: `non-Error thrown: ${String(err)}` };
  }
  const ms = performance.now() - t0;
  const bound = (typeof target.timeBoundMs === 'number' ? target.timeBoundMs : target.timeBoundMs(c.bytes)) * slack;
  if (!failure && ms > bound) failure = { kind: 'time', message: `took ${ms.toFixed(0)} ms, the bound is ${bound.toFixed(0)} ms` };
  return { failure: failure ? { ...failure, target: target.name, how: c.how, bytes: c.bytes, ms } : null, outcome, ms };
}

/** Tallies of a run, per target. */
export interface Stats {
  executions: number;
  ok: number;
  statuses: Record<string, number>;
  /** Engine errors (TypeError, RangeError...) wrapped into a 4xx by a catch-all, by message. */
  masked: Record<string, number>;
  slowestMs: number;
  /** How the slowest input was made. */
  slowestHow: string;
  failures: Failure[];
}

export const newStats = (): Stats => ({ executions: 0, ok: 0, statuses: {}, masked: {}, slowestMs: 0, slowestHow: '', failures: [] });

/**
 * Runs `numRuns` generated inputs with fast-check from `seed`; stops at the first failure
 * (fast-check then shrinks it: the saved input is the shrunk one). Deterministic per seed.
 */
export async function fuzz(
  target: Target,
  opts: { seed: number; numRuns: number; slack?: number; stats?: Stats; onInput?: (c: Case) => void; onDone?: (c: Case) => void },
): Promise<Stats> {
  const stats = opts.stats ?? newStats();
  const found: { last: Failure | null } = { last: null };
  const property = fc.asyncProperty(target.arbitrary, async (c) => {
    opts.onInput?.(c);
    const { failure, outcome, ms } = await runCase(target, c, opts.slack);
    stats.executions++;
    if (ms > stats.slowestMs) {
      stats.slowestMs = ms;
      stats.slowestHow = `seed ${opts.seed}: ${c.how}`;
    }
    if (outcome.result === 'ok') stats.ok++;
    else stats.statuses[outcome.result] = (stats.statuses[outcome.result] ?? 0) + 1;
    if (outcome.masked) {
      const key = outcome.masked.slice(0, 120);
      stats.masked[key] = (stats.masked[key] ?? 0) + 1;
    }
    opts.onDone?.(c);
    if (failure) {
      found.last = failure;
      return false;
    }
    return true;
  });
  const result = await fc.check(property, { seed: opts.seed, numRuns: opts.numRuns, endOnFailure: false, maxSkipsPerRun: 0 });
  if (result.failed) {
    // The last failing run is the shrunk counterexample.
    const last = found.last;
    if (last) stats.failures.push({ ...last, how: `seed ${opts.seed}: ${last.how}` });
    else stats.failures.push({ target: target.name, kind: 'exception', message: String(result.errorInstance), how: '?', bytes: new Uint8Array(0), ms: 0 });
  }
  return stats;
}

// ---- allocation accounting --------------------------------------------------------------------

type Ctor = { new (...args: never[]): ArrayBufferView | ArrayBuffer; prototype: object; name: string };

const TYPED_NAMES = [
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'ArrayBuffer',
] as const;

let counting = 0;
let counted = 0;
const g = globalThis as unknown as Record<string, Ctor>;
const originals = new Map<string, Ctor>();
const proxies = new Map<string, Ctor>();

function installCounters(): void {
  if (originals.size) return;
  for (const name of TYPED_NAMES) {
    const C = g[name]!;
    originals.set(name, C);
    const proxy = new Proxy(C, {
      construct(target, args: unknown[], newTarget) {
        const made = Reflect.construct(target, args, newTarget === proxy ? target : newTarget) as ArrayBufferView | ArrayBuffer;
        // A view onto an existing buffer allocates nothing; anything else (a length, an array,
        // another typed array, an iterable) allocates a new buffer of the result's size.
        const first = args[0];
        const view = first instanceof originals.get('ArrayBuffer')! || (typeof SharedArrayBuffer !== 'undefined' && first instanceof SharedArrayBuffer);
        if (counting > 0 && (name === 'ArrayBuffer' || !view)) counted += made.byteLength;
        return made;
      },
    });
    proxies.set(name, proxy);
  }
}

/**
 * The bytes of typed arrays and ArrayBuffers allocated while `fn` runs, counted by swapping the global constructors for counting proxies, and pointing
 * `prototype.constructor` at them so that species-created arrays (`slice`, `map`, `subarray`'s
 * views) go through them too. Sound for what it measures: every JS-visible buffer the decoders
 * allocate is made by one of these constructors (a module that kept a reference to an original
 * constructor from before would escape; ours look the globals up at each call). The sum of all
 * allocations is an upper bound on the peak the accounting describes (buffers freed early are
 * still counted), so a sum within the accounting proves the peak is; a sum over it is reported
 * and then looked at. Not counted: JS arrays and objects (small, by the decoders' design), and
 * libwebp's heap inside the wasm memory (emscripten grows it by its own policy and never
 * shrinks it, so its growth says little about one decode).
 */
export async function countAllocations<T>(fn: () => T | Promise<T>): Promise<{ value: T; bytes: number }> {
  installCounters();
  const before = counted;
  if (counting++ === 0) {
    for (const [name, proxy] of proxies) {
      g[name] = proxy;
      (originals.get(name)!.prototype as { constructor: unknown }).constructor = proxy;
    }
  }
  try {
    const value = await fn();
    return { value, bytes: counted - before };
  } finally {
    if (--counting === 0) {
      for (const [name, C] of originals) {
        g[name] = C;
        (C.prototype as { constructor: unknown }).constructor = C;
      }
    }
  }
}

/** The same for a synchronous function (no await between the swap and the decode). */
export function countAllocationsSync<T>(fn: () => T): { value: T; bytes: number } {
  installCounters();
  const before = counted;
  if (counting++ === 0) {
    for (const [name, proxy] of proxies) {
      g[name] = proxy;
      (originals.get(name)!.prototype as { constructor: unknown }).constructor = proxy;
    }
  }
  try {
    const value = fn();
    return { value, bytes: counted - before };
  } finally {
    if (--counting === 0) {
      for (const [name, C] of originals) {
        g[name] = C;
        (C.prototype as { constructor: unknown }).constructor = C;
      }
    }
  }
}

// ---- mutations --------------------------------------------------------------------------------

/** A region of a file with structure: a JPEG segment, a PNG/RIFF chunk, a GIF block. */
export interface Struct {
  /** Offset of its header (marker, length, type), of its payload, and the payload's end. */
  at: number;
  dataStart: number;
  dataEnd: number;
  /** Its full extent, header to trailer (CRC, padding). */
  end: number;
  /** Where its length field is, if it has one. */
  len?: { at: number; size: 1 | 2 | 4; big: boolean; /** the field's value minus the payload length */ bias: number };
  /** Where its type (marker code, chunk type) is. */
  type?: { at: number; size: 1 | 4 };
  /** Its type as text (for filtering and reports). */
  name: string;
}

/** The structure of a file, as a format's parser sees it; mutations aim at it. */
export type Parser = (bytes: Uint8Array) => Struct[];

/** Structure-aware edits a format adds to the generic ones. */
export interface FormatOps {
  parse: Parser;
  /** Interesting values for a type field of 1 byte (JPEG marker codes) or 4 bytes (chunk types). */
  types: number[] | string[];
  /** Extra format-specific ops (already applied to bytes). */
  extra?: fc.Arbitrary<Op>;
  /** Run after all ops (PNG: fix the CRCs, when the case asks for it). */
  finish?: (bytes: Uint8Array, fix: boolean) => Uint8Array;
}

export interface Op {
  /** Short description for the report. */
  what: string;
  apply(bytes: Uint8Array, others: readonly Uint8Array[]): Uint8Array;
}

const INTERESTING_8 = [0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 0x10, 0x20, 0x40, 3, 4, 7, 8, 15, 16];
const INTERESTING_16 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x3fff, 0x4000, 0x7fff, 0x8000, 0xfffe, 0xffff];
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xfffffff6, 0xfffffff7, 0xffffffff, 0x10000, 0x1000000];

const byteArb = fc.oneof(fc.constantFrom(...INTERESTING_8), fc.integer({ min: 0, max: 255 }));
const pos = fc.nat({ max: 0x7fffffff });

function put(bytes: Uint8Array, at: number, value: number, size: 1 | 2 | 4, big: boolean): void {
  for (let i = 0; i < size; i++) {
    const shift = big ? 8 * (size - 1 - i) : 8 * i;
    if (at + i < bytes.length) bytes[at + i] = Math.floor(value / 2 ** shift) & 0xff;
  }
}

function get(bytes: Uint8Array, at: number, size: 1 | 2 | 4, big: boolean): number {
  let v = 0;
  for (let i = 0; i < size; i++) {
    const b = bytes[at + i] ?? 0;
    v += b * 2 ** (big ? 8 * (size - 1 - i) : 8 * i);
  }
  return v;
}

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

const edit = (bytes: Uint8Array, f: (b: Uint8Array) => void): Uint8Array => {
  const b = bytes.slice();
  f(b);
  return b;
};

/** Format-independent mutations: bit flips, byte and word sets, truncation, cuts, copies, splices. */
export const genericOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ p: pos, bit: fc.integer({ min: 0, max: 7 }) }).map(({ p, bit }) => ({
    what: `flip bit ${bit} at ${p}`,
    apply: (b: Uint8Array) => (b.length ? edit(b, (x) => (x[p % x.length]! ^= 1 << bit)) : b),
  })) },
  { weight: 3, arbitrary: fc.record({ p: pos, v: byteArb }).map(({ p, v }) => ({
    what: `set byte ${p} to ${v}`,
    apply: (b: Uint8Array) => (b.length ? edit(b, (x) => (x[p % x.length] = v)) : b),
  })) },
  { weight: 2, arbitrary: fc.record({ p: pos, size: fc.constantFrom(2 as const, 4 as const), big: fc.boolean(), v: fc.oneof(fc.constantFrom(...INTERESTING_16, ...INTERESTING_32), fc.nat()) }).map(({ p, size, big, v }) => ({
    what: `set ${size}-byte ${big ? 'BE' : 'LE'} word at ${p} to ${v}`,
    apply: (b: Uint8Array) => (b.length ? edit(b, (x) => put(x, p % x.length, v, size, big)) : b),
  })) },
  { weight: 2, arbitrary: pos.map((p) => ({ what: `truncate at ${p}`, apply: (b: Uint8Array) => b.subarray(0, b.length ? p % b.length : 0).slice() })) },
  { weight: 1, arbitrary: fc.record({ p: pos, n: fc.integer({ min: 1, max: 64 }) }).map(({ p, n }) => ({
    what: `cut ${n} bytes at ${p}`,
    apply: (b: Uint8Array) => { const at = b.length ? p % b.length : 0; return concat(b.subarray(0, at), b.subarray(at + n)); },
  })) },
  { weight: 1, arbitrary: fc.record({ p: pos, ins: fc.uint8Array({ minLength: 1, maxLength: 16 }) }).map(({ p, ins }) => ({
    what: `insert ${ins.length} bytes at ${p}`,
    apply: (b: Uint8Array) => { const at = b.length ? p % (b.length + 1) : 0; return concat(b.subarray(0, at), ins, b.subarray(at)); },
  })) },
  { weight: 1, arbitrary: fc.record({ p: pos, n: fc.integer({ min: 1, max: 256 }) }).map(({ p, n }) => ({
    what: `duplicate ${n} bytes at ${p}`,
    apply: (b: Uint8Array) => { const at = b.length ? p % b.length : 0; return concat(b.subarray(0, at + n), b.subarray(at)); },
  })) },
  { weight: 1, arbitrary: fc.record({ o: fc.nat(), p: pos, q: pos }).map(({ o, p, q }) => ({
    what: `splice: head to ${p}, then corpus file #${o} from ${q}`,
    apply: (b: Uint8Array, others: readonly Uint8Array[]) => {
      const other = others[o % others.length]!;
      return concat(b.subarray(0, b.length ? p % b.length : 0), other.subarray(other.length ? q % other.length : 0));
    },
  })) },
  { weight: 1, arbitrary: fc.record({ o: fc.nat(), p: pos, q: pos, n: fc.integer({ min: 1, max: 512 }) }).map(({ o, p, q, n }) => ({
    what: `overwrite ${n} bytes at ${p} with corpus file #${o} from ${q}`,
    apply: (b: Uint8Array, others: readonly Uint8Array[]) => {
      const other = others[o % others.length]!;
      if (!b.length || !other.length) return b;
      const from = other.subarray(q % other.length, (q % other.length) + n);
      return edit(b, (x) => x.set(from.subarray(0, Math.max(0, x.length - (p % x.length))), p % x.length));
    },
  })) },
);

/** Mutations aimed at a format's structure: payload bytes and words, lengths, types, copies, drops, moves. */
export function structOps(fmt: FormatOps): fc.Arbitrary<Op> {
  const pick = (b: Uint8Array, i: number): Struct | undefined => {
    const list = fmt.parse(b);
    return list.length ? list[i % list.length] : undefined;
  };
  const typeValues = fmt.types as Array<number | string>;
  const ops: Array<fc.WeightedArbitrary<Op>> = [
    { weight: 3, arbitrary: fc.record({ i: fc.nat(), k: fc.nat(), near: fc.boolean(), v: byteArb }).map(({ i, k, near, v }) => ({
      what: `struct #${i}: set payload byte ${near ? k % 24 : k} to ${v}`,
      apply: (b: Uint8Array) => {
        const s = pick(b, i);
        const n = s ? s.dataEnd - s.dataStart : 0;
        if (!s || n <= 0) return b;
        return edit(b, (x) => (x[s.dataStart + ((near ? k % 24 : k) % n)] = v));
      },
    })) },
    { weight: 2, arbitrary: fc.record({ i: fc.nat(), k: fc.nat(), big: fc.boolean(), v: fc.constantFrom(...INTERESTING_16) }).map(({ i, k, big, v }) => ({
      what: `struct #${i}: set payload word ${k % 16} to ${v}`,
      apply: (b: Uint8Array) => {
        const s = pick(b, i);
        if (!s || s.dataEnd - s.dataStart < 2) return b;
        return edit(b, (x) => put(x, s.dataStart + ((k % 16) % (s.dataEnd - s.dataStart - 1)), v, 2, big));
      },
    })) },
    { weight: 2, arbitrary: fc.record({ i: fc.nat(), how: fc.oneof(fc.integer({ min: -8, max: 8 }), fc.constantFrom('zero', 'max', 'big')) }).map(({ i, how }) => ({
      what: `struct #${i}: length ${typeof how === 'number' ? `${how >= 0 ? '+' : ''}${how}` : how}`,
      apply: (b: Uint8Array) => {
        const s = pick(b, i);
        if (!s?.len) return b;
        const { at, size, big } = s.len;
        const max = 2 ** (8 * size) - 1;
        const cur = get(b, at, size, big);
        const v = how === 'zero' ? 0 : how === 'max' ? max : how === 'big' ? Math.min(max, cur * 2 + 1000) : Math.max(0, Math.min(max, cur + how));
        return edit(b, (x) => put(x, at, v, size, big));
      },
    })) },
    { weight: 2, arbitrary: fc.record({ i: fc.nat(), t: fc.constantFrom(...typeValues) }).map(({ i, t }) => ({
      what: `struct #${i}: type ${typeof t === 'number' ? `0x${t.toString(16)}` : JSON.stringify(t)}`,
      apply: (b: Uint8Array) => {
        const s = pick(b, i);
        if (!s?.type) return b;
        const at = s.type.at;
        return edit(b, (x) => {
          if (typeof t === 'number') x[at] = t;
          else for (let j = 0; j < 4; j++) if (at + j < x.length) x[at + j] = t.charCodeAt(j);
        });
      },
    })) },
    { weight: 1, arbitrary: fc.nat().map((i) => ({
      what: `struct #${i}: duplicate`,
      apply: (b: Uint8Array) => { const s = pick(b, i); return s ? concat(b.subarray(0, s.end), b.subarray(s.at, s.end), b.subarray(s.end)) : b; },
    })) },
    { weight: 1, arbitrary: fc.nat().map((i) => ({
      what: `struct #${i}: remove`,
      apply: (b: Uint8Array) => { const s = pick(b, i); return s ? concat(b.subarray(0, s.at), b.subarray(s.end)) : b; },
    })) },
    { weight: 1, arbitrary: fc.nat().map((i) => ({
      what: `struct #${i}: swap with the next`,
      apply: (b: Uint8Array) => {
        const list = fmt.parse(b);
        if (list.length < 2) return b;
        const s = list[i % (list.length - 1)]!;
        const t = list[(i % (list.length - 1)) + 1]!;
        if (t.at < s.end) return b;
        return concat(b.subarray(0, s.at), b.subarray(t.at, t.end), b.subarray(s.end, t.at), b.subarray(s.at, s.end), b.subarray(t.end));
      },
    })) },
    { weight: 1, arbitrary: fc.record({ i: fc.nat(), o: fc.nat(), j: fc.nat() }).map(({ i, o, j }) => ({
      what: `struct #${i}: replace with struct #${j} of corpus file #${o}`,
      apply: (b: Uint8Array, others: readonly Uint8Array[]) => {
        const s = pick(b, i);
        const other = others[o % others.length]!;
        const t = pick(other, j);
        return s && t ? concat(b.subarray(0, s.at), other.subarray(t.at, t.end), b.subarray(s.end)) : b;
      },
    })) },
  ];
  if (fmt.extra) ops.push({ weight: 3, arbitrary: fmt.extra });
  return fc.oneof(...ops);
}

/**
 * The files a target mutates: the fixtures, and in the coverage-guided long run the inputs
 * that reached new code (`add`). Generation reads it at each input, so additions take effect.
 */
export class Corpus {
  readonly entries: Array<{ name: string; bytes: Uint8Array }>;
  readonly files: Uint8Array[];
  constructor(fixtures: Array<{ name: string; bytes: Uint8Array }>) {
    this.entries = [...fixtures];
    this.files = fixtures.map((f) => f.bytes);
  }
  add(name: string, bytes: Uint8Array): void {
    this.entries.push({ name, bytes });
    this.files.push(bytes);
  }
}

/**
 * Inputs made from a corpus: a file as it is (now and then), or with 1..maxOps mutations,
 * structure-aware ones (when `fmt` is given) mixed with generic ones.
 */
export function mutatedCorpus(name: string, corpus: Corpus, fmt?: FormatOps, maxOps = 4): fc.Arbitrary<Case> {
  const files = corpus.files;
  const op = fmt ? fc.oneof({ weight: 3, arbitrary: structOps(fmt) }, { weight: 2, arbitrary: genericOp }) : genericOp;
  return fc
    .record({ file: fc.nat(), ops: fc.array(op, { minLength: 0, maxLength: maxOps }), fix: fc.boolean() })
    .map(({ file, ops, fix }) => {
      const source = corpus.entries[file % corpus.entries.length]!;
      let bytes = source.bytes;
      for (const o of ops) bytes = o.apply(bytes, files);
      if (fmt?.finish) bytes = fmt.finish(bytes, fix);
      if (bytes === source.bytes) bytes = bytes.slice();
      return { bytes, how: `${name}: ${source.name}${ops.length ? ` | ${ops.map((o) => o.what).join(' | ')}` : ''}${fmt?.finish && fix ? ' | fix checksums' : ''}` };
    });
}

export { concat, get, put };

// ---- regression files -------------------------------------------------------------------------

/** A failure's signature: its kind and message without the numbers (one file per signature). */
export const signature = (f: Pick<Failure, 'target' | 'kind' | 'message'>): string =>
  `${f.target} ${f.kind} ${f.message.replace(/[0-9]+/g, 'N').slice(0, 160)}`;

/** The note saved beside a regression input. */
export function note(f: Failure, seed: number | string): string {
  return [
    `target: ${f.target}`,
    `seed: ${seed}`,
    `kind: ${f.kind}`,
    `message: ${f.message}`,
    `made by: ${f.how}`,
    `took: ${f.ms.toFixed(1)} ms`,
    'stack:',
    ...(f.stack ?? '').split('\n').slice(0, 12).map((l) => `  ${l}`),
    '',
  ].join('\n');
}
