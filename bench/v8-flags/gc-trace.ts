/**
 * V8's own account of an isolate's memory at each garbage collection, read from
 * `--trace-gc-verbose` output (workerd.sh passes the flag to wrangler dev's runtime). A
 * collection runs inside a task, when allocation asks for one, so this sees the memory of the
 * request being decoded or classified, which the inspector, answered only between tasks, cannot.
 *
 * Each collection prints a headline and then the heap's statistics, every line prefixed with
 * `[pid:isolate]`:
 *
 *   [1:0x31c8]  24880 ms: Scavenge 13.2 (18.2) -> 11.3 (19.7) MB, ...
 *   [1:0x31c8] All spaces,                 used:  13414 KB, available: ...
 *   [1:0x31c8] Backing store memory:                        13411 KB
 *
 * "Backing store memory" is the ArrayBuffers V8 accounts for. By default V8 frees the dead ones
 * on another thread after it reports, so the figure is what the isolate held as the collection
 * began, garbage included. With `--no-concurrent-array-buffer-sweeping` they are freed within
 * the collection, and after a full one (Mark-Compact) the figure is what is live
 * (test/node/v8-flags.test.ts shows both). A scavenge looks at young objects only, so after one
 * it still counts old garbage. Wasm memories are not among these buffers (onnxruntime's 50 MB
 * heap does not show there), so callers add those separately.
 */

/** The flags for reading live memory at full collections: GcTrace's input, sweeping in the pause. */
export const GC_TRACE_FLAGS = ['--trace-gc-verbose', '--no-concurrent-array-buffer-sweeping'] as const;

export interface GcEvent {
  isolate: string;
  /** e.g. `Scavenge`, `Mark-Compact`, `Minor Mark-Sweep`. */
  kind: string;
  /** JS heap before the collection (garbage included), bytes. */
  heapBefore: number;
  /** JS heap in use after it, bytes (what is live, after a full collection). */
  heapAfter: number;
  /** ArrayBuffer backing stores V8 still accounted for after it (see above), bytes. */
  buffers: number;
}

const KiB = 1024;
const MiB = 1024 * 1024;
const HEADLINE = /^\[\d+:(0x[0-9a-f]+)\]\s+[\d.]+ ms: ([A-Za-z -]+?) ([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB/;
const USED = /^\[\d+:(0x[0-9a-f]+)\] All spaces,\s+used:\s+(\d+) KB/;
const BUFFERS = /^\[\d+:(0x[0-9a-f]+)\] Backing store memory:\s+(\d+) KB/;

export class GcTrace {
  readonly events: GcEvent[] = [];
  private partial = '';
  /** Collections whose statistics are still to come, per isolate (isolates on other threads may interleave lines). */
  private readonly open = new Map<string, GcEvent>();

  /** Feeds output text in whatever chunks it arrives; lines may be split across chunks. */
  feed(text: string): void {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line.trimEnd());
  }

  private line(line: string): void {
    let m = HEADLINE.exec(line);
    if (m) {
      this.open.set(m[1]!, { isolate: m[1]!, kind: m[2]!.trim(), heapBefore: Number(m[3]) * MiB, heapAfter: Number(m[4]) * MiB, buffers: 0 });
      return;
    }
    m = USED.exec(line);
    if (m) {
      const e = this.open.get(m[1]!);
      if (e) e.heapAfter = Number(m[2]) * KiB;
      return;
    }
    m = BUFFERS.exec(line);
    if (m) {
      const e = this.open.get(m[1]!);
      if (!e) return;
      e.buffers = Number(m[2]) * KiB;
      this.events.push(e);
      this.open.delete(m[1]!);
    }
  }

  /** The events from index `from` on (take `events.length` as a mark). */
  since(from: number): GcEvent[] {
    return this.events.slice(from);
  }
}

/** What V8 held after a collection: JS heap in use + ArrayBuffers (wasm memories apart). */
export const heldAfter = (e: GcEvent): number => e.heapAfter + e.buffers;

/**
 * The isolate doing the work in `events`: the one holding the most at any of its collections
 * (a burst's uploads go through the front Worker; stage Workers and wrangler's own hold little).
 */
export function busiestIsolate(events: readonly GcEvent[]): string | undefined {
  let best: GcEvent | undefined;
  for (const e of events) if (!best || heldAfter(e) > heldAfter(best)) best = e;
  return best?.isolate;
}

/** A full collection, after which (with GC_TRACE_FLAGS) the figures are live memory. */
export const isFull = (e: GcEvent): boolean => /Mark/.test(e.kind);
