/**
 * Coverage feedback for the long run, from V8's own block coverage (node:inspector, no
 * instrumentation and no dependency): after each input, the blocks of src/ that ran, with
 * their hit counts bucketed as AFL does (1, 2, 3, 4-7, 8-15, ...). An input that reaches a
 * block or a bucket no earlier input did joins the target's corpus, so later mutations start
 * from it: coverage-guided mutation on top of fast-check's generation.
 */
import { Session } from 'node:inspector';

interface Range {
  startOffset: number;
  endOffset: number;
  count: number;
}
interface ScriptCoverage {
  url: string;
  functions: Array<{ ranges: Range[] }>;
}

const bucket = (n: number): number => (n <= 3 ? n : 31 - Math.clz32(n) + 2);

export class CoverageFeedback {
  private readonly session = new Session();
  private readonly seen = new Set<string>();

  constructor(private readonly include = '/src/') {
    this.session.connect();
    this.post('Profiler.enable');
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
    this.take();
  }

  /** Blocks (or hit-count buckets) run since the last call that no earlier call saw. */
  newBlocks(): number {
    let fresh = 0;
    for (const script of this.take()) {
      if (!script.url.includes(this.include) || script.url.includes('node_modules')) continue;
      for (const fn of script.functions) {
        for (const r of fn.ranges) {
          if (r.count === 0) continue;
          const key = `${script.url}:${r.startOffset}:${r.endOffset}:${bucket(r.count)}`;
          if (!this.seen.has(key)) {
            this.seen.add(key);
            fresh++;
          }
        }
      }
    }
    return fresh;
  }

  /** Distinct (block, bucket) pairs seen so far. */
  get size(): number {
    return this.seen.size;
  }

  private take(): ScriptCoverage[] {
    let out: ScriptCoverage[] = [];
    this.post('Profiler.takePreciseCoverage', undefined, (r) => (out = (r as { result: ScriptCoverage[] }).result));
    return out;
  }

  /** Same-thread inspector sessions answer synchronously. */
  private post(method: string, params?: object, then?: (result: unknown) => void): void {
    let done = false;
    this.session.post(method, params, (err, result) => {
      if (err) throw err;
      done = true;
      then?.(result);
    });
    if (!done) throw new Error(`inspector ${method} did not answer synchronously`);
  }
}
