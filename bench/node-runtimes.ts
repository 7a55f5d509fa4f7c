/**
 * onnxruntime-web (WASM, 1 thread) and onnxruntime-node (native CPU, 1 intra-op thread) in
 * plain Node: each model in each runtime lives in its own fresh process (bench/node-child.ts),
 * which the harness asks for blocks of runs in turn with the Worker's requests.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from '../models/src/paths';

export type NodeRuntime = 'ort-web' | 'ort-node';

export interface ChildCold {
  /** Loading the runtime's JS (and, for ort-node, its native binding), before the cold path. */
  importMs: number;
  /** Session creation in a fresh process; for ort-web this includes compiling ORT's 14 MB wasm. */
  createMs: number;
  firstRunMs: number;
  /** Class index of the largest logit of the first run: the runtimes must agree with workerd. */
  top1: number;
  /** onnxruntime-web only: bytes. */
  memory?: {
    wasmHeapAfterCreate: number;
    wasmHeapAfterRun: number;
    jsHeapDeltaAfterCreate: number;
    jsHeapDeltaAfterRun: number;
    /** WebAssembly.Memory objects created (1 expected: ORT's heap). */
    memories: number;
  };
}

export interface ChildEnd {
  /** After all runs: the heap never shrinks, so this is its peak (0 for ort-node). */
  wasmHeapPeak: number;
}

export class NodeRuntimeProcess {
  private readonly waiting: Array<{ tag: string; done: (json: string) => void; fail: (err: Error) => void }> = [];
  private stderr = '';
  private exited = false;

  private constructor(
    readonly runtime: NodeRuntime,
    private readonly child: ChildProcessWithoutNullStreams,
  ) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const space = line.indexOf(' ');
      const tag = line.slice(0, space);
      const next = this.waiting[0];
      if (next && tag === next.tag) {
        this.waiting.shift();
        next.done(line.slice(space + 1));
      }
    });
    child.stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    child.on('exit', (code) => {
      this.exited = true;
      for (const w of this.waiting.splice(0)) w.fail(new Error(`${runtime} exited (${code}): ${this.stderr.trim().slice(-1500)}`));
    });
  }

  private expect(tag: string): Promise<string> {
    if (this.exited) return Promise.reject(new Error(`${this.runtime} has exited: ${this.stderr.trim().slice(-1500)}`));
    return new Promise((done, fail) => this.waiting.push({ tag, done, fail }));
  }

  /** Starts the process; resolves once its session exists and the cold path and warm-up ran. */
  static async start(
    runtime: NodeRuntime,
    modelPath: string,
    inputPath: string,
    warmup: number,
    disablePrepacking = false,
    inputDims?: readonly number[],
    /** Extra node/V8 flags, e.g. --wasm-enforce-bounds-checks (bench/bounds-checks.ts). */
    nodeFlags: readonly string[] = [],
  ): Promise<{ process: NodeRuntimeProcess; cold: ChildCold }> {
    const prepacking = disablePrepacking ? 'no-prepacking' : 'prepacking';
    const args = [join(ROOT, 'bench/node-child.ts'), runtime, modelPath, inputPath, String(warmup), prepacking, ...(inputDims ? [inputDims.join(',')] : [])];
    const child = spawn(
      process.execPath,
      ['--expose-gc', ...nodeFlags, '--import', 'tsx', ...args],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const p = new NodeRuntimeProcess(runtime, child);
    try {
      const cold = JSON.parse(await p.expect('COLD')) as ChildCold;
      return { process: p, cold };
    } catch (err) {
      p.kill();
      throw err;
    }
  }

  async run(count: number): Promise<number[]> {
    const answer = this.expect('TIMES');
    this.child.stdin.write(`run ${count}\n`);
    return JSON.parse(await answer) as number[];
  }

  async end(): Promise<ChildEnd> {
    const answer = this.expect('END');
    this.child.stdin.write('end\n');
    return JSON.parse(await answer) as ChildEnd;
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

/** One runtime on one model, start to finish, without interleaving (bench/memory-table.ts uses it). */
export interface NodeRunResult {
  runtime: NodeRuntime;
  importMs: number;
  createMs: number;
  firstRunMs: number;
  warmMs: number[];
  top1: number;
  memory?: {
    wasmHeapAfterCreate: number;
    wasmHeapAfterRun: number;
    wasmHeapPeak: number;
    jsHeapDeltaAfterCreate: number;
    jsHeapDeltaAfterRun: number;
    memories: number;
  };
}

export async function runNodeChild(
  runtime: NodeRuntime,
  modelPath: string,
  inputPath: string,
  warmup: number,
  iterations: number,
  options: { disablePrepacking?: boolean; inputDims?: readonly number[] } = {},
): Promise<NodeRunResult> {
  const { process: p, cold } = await NodeRuntimeProcess.start(runtime, modelPath, inputPath, warmup, options.disablePrepacking, options.inputDims);
  try {
    const warmMs = await p.run(iterations);
    const end = await p.end();
    const { memory, ...rest } = cold;
    return { runtime, ...rest, warmMs, ...(memory ? { memory: { ...memory, wasmHeapPeak: end.wasmHeapPeak } } : {}) };
  } finally {
    p.kill();
  }
}
