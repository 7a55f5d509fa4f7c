/**
 * The Worker under `wrangler dev` (workerd, V8 defaults), on its own local R2 folder and a
 * free port, driven over HTTP. Each start is a fresh isolate: that is how the cold path is
 * measured.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { uploadModel } from '../models/src/upload';
import { stageFile, type ModelManifest } from '../src/models/manifest';
import { ROOT } from '../models/src/paths';
import { run } from '../models/src/run';

export interface Stages {
  model: number;
  decode: number;
  preprocess: number;
  inference: number;
  /** Server-side total of the handler. */
  total: number;
}

export interface Sample {
  status: number;
  /** Client-observed: request sent to body read, milliseconds (from the first attempt when retried). */
  clientMs: number;
  /** Attempts lost to wrangler dev's proxy (see PROXY_RESET) before this answer. */
  proxyResets: number;
  stages?: Stages;
  /** Class index of the first prediction. */
  top1?: number;
  error?: string;
}

export function parseServerTiming(header: string | null): Stages | undefined {
  if (!header) return undefined;
  const values = new Map<string, number>();
  for (const part of header.split(',')) {
    const m = /^\s*([a-z]+);dur=([0-9.eE+-]+)\s*$/.exec(part);
    if (m) values.set(m[1]!, Number(m[2]));
  }
  const get = (k: string): number | undefined => values.get(k);
  const [model, decode, preprocess, inference, total] = ['model', 'decode', 'preprocess', 'inference', 'total'].map(get);
  if ([model, decode, preprocess, inference, total].some((v) => v === undefined || !Number.isFinite(v))) return undefined;
  return { model: model!, decode: decode!, preprocess: preprocess!, inference: inference!, total: total! };
}

/** The stage timings of a successful answer; anything else throws, naming the request. */
export function stagesOf(s: Sample, what: string): Stages {
  if (s.status !== 200 || !s.stages) throw new Error(`${what}: HTTP ${s.status}${s.error ? `: ${s.error}` : ''}`);
  return s.stages;
}

const WRANGLER = join(ROOT, 'node_modules/.bin/wrangler');

/**
 * wrangler dev puts a proxy worker (a Durable Object in a workerd of its own) in front of the
 * runtime that runs our Workers, and keeps its connections to the runtime alive. Under a burst
 * the runtime's one thread is busy for seconds at a time, and workerd closes a kept-alive
 * connection whose next request it has not read within 5 s of the last answer, unread
 * (bench/keepalive-race.ts reproduces it with workerd alone; the runtime closes them first, the
 * isolate lives on). The proxy answers that network error on a POST with this 503 text
 * (templates/startDevWorker/ProxyWorker.ts), though nothing restarted. Sent straight to the
 * runtime on a new connection per request (bench/load-fetch.ts), the same bursts lose nothing.
 * Deployed Workers have no such hop.
 */
export const PROXY_RESET = /Your worker restarted mid-request/;

/** wrangler (4.86) debug log: `"userWorkerUrl":{"protocol":"http:","hostname":"127.0.0.1","port":"40195"}`. */
const USER_WORKER_URL = /"userWorkerUrl":\{"protocol":"(https?:)","hostname":"([^"]+)","port":"(\d+)"\}/g;
/** Local TCP ports in LISTEN state, by socket inode (Linux /proc). */
async function listeningInodes(): Promise<Map<string, number>> {
  const ports = new Map<string, number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (await readFile(table, 'utf8')).split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is hex ip:port; state 0A is LISTEN; field 9 is the inode.
      if (f.length > 9 && f[3] === '0A') ports.set(f[9]!, parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

/** The listening ports of the runtime: of wrangler's group, the workerd that does not own the proxy's port. */
async function runtimePorts(group: number, proxyPort: number): Promise<number[]> {
  const { readdir, readlink } = await import('node:fs/promises');
  const listening = await listeningInodes();
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      // Fields after "(comm)": state ppid pgrp ...
      const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(after[2]) !== group || !stat.includes('(workerd)')) continue;
      const ports: number[] = [];
      for (const fd of await readdir(`/proc/${pid}/fd`)) {
        const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
        const port = listening.get(link.replace(/^socket:\[(\d+)\]$/, '$1'));
        if (port !== undefined) ports.push(port);
      }
      if (!ports.includes(proxyPort)) return ports;
    } catch {
      // gone meanwhile
    }
  }
  return [];
}

/**
 * The runtime's own address when wrangler does not log it (its inspector off): of the
 * runtime's listening ports, the one answering GET /ping in our shape is the Workers' entry.
 */
async function runtimeListening(group: number, proxyPort: number): Promise<string | undefined> {
  for (const port of await runtimePorts(group, proxyPort)) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/ping`, { signal: AbortSignal.timeout(5000) });
      const text = await res.text();
      // Healthy or not (the default model may not be in this bucket), it is our /ping.
      if (/^\{"status":"(Healthy|Unhealthy)"/.test(text)) return `http://127.0.0.1:${port}`;
    } catch {
      // not HTTP
    }
  }
  return undefined;
}

/**
 * The pid of the process listening on a local TCP port (Linux /proc), e.g. the runtime behind
 * `runtimeBase`; undefined elsewhere or when not found.
 */
export async function pidListeningOn(port: number): Promise<number | undefined> {
  const { readdir, readlink } = await import('node:fs/promises');
  try {
    const inode = [...(await listeningInodes())].find(([, p]) => p === port)?.[0];
    if (!inode) return undefined;
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      let fds: string[];
      try {
        fds = await readdir(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        try {
          if ((await readlink(`/proc/${pid}/fd/${fd}`)) === `socket:[${inode}]`) return Number(pid);
        } catch {
          // closed meanwhile
        }
      }
    }
  } catch {
    // not Linux
  }
  return undefined;
}

/** The Workers of a local deployment as wrangler dev runs them: the front, then the stage Workers. */
export interface WorkerConfigs {
  front: string;
  /** Front + stage Workers, for split models. */
  all: string[];
}

export const CONFIGS = ['wrangler.toml', 'wrangler.stage-1.toml', 'wrangler.stage-2.toml'];

/**
 * Bundles each Worker once (as `npm run check:bundle` does) and writes wrangler configs that
 * serve those bundles unchanged. wrangler dev reloads a Worker whenever a source file changes,
 * and other people edit src/ while this runs: a reload would put a fresh isolate in the middle
 * of the warm figures and mix code versions in one report.
 */
export async function snapshotWorkers(dir: string): Promise<WorkerConfigs> {
  await rm(dir, { recursive: true, force: true });
  const paths: string[] = [];
  for (const config of CONFIGS) {
    const out = join(dir, config.replace(/\.toml$/, ''));
    await run(WRANGLER, ['deploy', '--dry-run', '--config', join(ROOT, config), '--outdir', join(out, 'bundle')]);
    const text = await readFile(join(ROOT, config), 'utf8');
    if (!/^main = .*$/m.test(text)) throw new Error(`${config} has no main = line to point at the bundle`);
    // wrangler names the bundle after the entry point (src/index.ts -> index.js, src/stage.ts -> stage.js).
    const entry = /^main = "src\/(.*)\.ts"$/m.exec(text)?.[1] ?? 'index';
    const path = join(out, 'wrangler.toml');
    await writeFile(path, unmetered(absoluteAssets(text.replace(/^main = .*$/m, `main = "bundle/${entry}.js"\nno_bundle = true\nfind_additional_modules = true`), ROOT)));
    paths.push(path);
  }
  return { front: paths[0]!, all: paths };
}

/**
 * A config copied out of `dir` keeps serving the page's static assets (`[assets] directory`,
 * which wrangler resolves against the config's own folder, and refuses when missing).
 */
export function absoluteAssets(toml: string, dir: string): string {
  return toml.replace(/^directory = "(.+)"$/m, (_, path: string) => `directory = "${join(dir, path)}"`);
}

/**
 * The benchmark measures speed, including fp32 models that no 128 MB isolate could hold and
 * 16 concurrent clients: admission control (src/admission) would rightly refuse some of that,
 * so its limits are lifted in the benchmark's Workers. (Admission under load has its own
 * figure and tests: bench/burst.ts, test/worker/admission.test.ts.)
 */
function unmetered(toml: string): string {
  const lifted: Record<string, string> = { MAX_IN_FLIGHT: '1000', MEMORY_BUDGET_MB: '100000', ADMISSION_WAIT_MS: '600000', REQUEST_TIMEOUT_MS: '600000' };
  let out = toml;
  for (const [name, value] of Object.entries(lifted)) {
    const line = new RegExp(`^${name} = ".*"$`, 'm');
    out = line.test(out) ? out.replace(line, `${name} = "${value}"`) : out;
  }
  return out;
}

export interface WranglerDevOptions {
  resultCache?: boolean;
  vars?: Record<string, string>;
  inspector?: boolean;
  v8Flags?: readonly string[];
}

export class WranglerDev {
  /** Running instances, so that an interrupted run can still stop them (they are detached). */
  static readonly live = new Set<WranglerDev>();
  private log = '';
  private readonly listeners: Array<(text: string) => void> = [];
  /** The runtime's own address (the user Worker socket behind wrangler's proxy), once known. */
  private runtime: string | undefined;
  /** The runtime's address found from /proc when wrangler did not log it. */
  private discovered: string | undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly base: string,
    /** wrangler's inspector proxy: DevTools' /json lists the front Worker's WebSocket. */
    readonly inspectorPort: number,
    /** Spawn to first answer, milliseconds. */
    public readyMs = 0,
  ) {
    child.stdout?.on('data', (d: Buffer) => this.append(d));
    child.stderr?.on('data', (d: Buffer) => this.append(d));
  }

  private append(d: Buffer): void {
    const text = d.toString();
    for (const listener of this.listeners) listener(text);
    // Keep the tail only: a long run logs a line per request.
    this.log = (this.log + text).slice(-20_000);
    // wrangler's debug log hands its proxy the runtime's address after each (re)load; the last
    // wins. Matched over the chunk and a little before it, as a line may come in two chunks.
    for (const m of this.log.slice(-(text.length + 200)).matchAll(USER_WORKER_URL)) this.runtime = `${m[1]}//${m[2]}:${m[3]}`;
  }


  /** Every piece of wrangler's and the runtime's output from now on (the log keeps only a tail). */
  onOutput(listener: (text: string) => void): void {
    this.listeners.push(listener);
  }

  tail(chars = 2000): string {
    return this.log.slice(-chars);
  }

  /** `configs`: the front Worker's config first, then any stage Workers' (one workerd, several Workers). */
  /**
   * `resultCache`: keep the result cache (src/cache) as wrangler.toml configures it. Off by
   * default: every figure but bench/cache.ts posts the same bytes again and again, and would
   * measure cache hits instead of decoding and inference. `vars`: extra `--var NAME:value`
   * settings (an `API_KEY` is also sent by the readiness poll). `v8Flags`: flags for the
   * runtime's V8, through bench/v8-flags/workerd.sh.
   */
  static async start(configs: string | readonly string[], persistTo: string, timeoutMs = 180_000, options: WranglerDevOptions = {}): Promise<WranglerDev> {
    // A free port is found by binding port 0 and letting it go; until wrangler binds it, another
    // process may take it (the load tests open a connection per request, each on an ephemeral
    // port of the same range): CI once failed so. So a start that meets a taken port tries anew.
    for (let attempt = 1; ; attempt++) {
      try {
        return await WranglerDev.startOnce(configs, persistTo, timeoutMs, options);
      } catch (err) {
        if (attempt === 3 || !(err instanceof Error && /Address already in use/.test(err.message))) throw err;
      }
    }
  }

  private static async startOnce(configs: string | readonly string[], persistTo: string, timeoutMs: number, options: WranglerDevOptions): Promise<WranglerDev> {
    const port = await freePort();
    // wrangler's own inspector proxy (DevTools protocol for the front Worker), on a known port.
    const inspectorPort = await freePort();
    // Debug logging is how wrangler tells where the runtime listens (see runtimeBase).
    const env: Record<string, string | undefined> = { ...process.env, WRANGLER_SEND_METRICS: 'false', WRANGLER_LOG: 'debug' };
    // wrangler 4.86's CLI cannot turn its inspector proxy off; it leaves it off in a VS Code
    // debug terminal, which it tells by this variable (ProxyController.inspectorEnabled).
    if (options.inspector === false) env.VSCODE_INSPECTOR_OPTIONS = '{}';
    // wrangler 4.86's own miniflare does not read MINIFLARE_WORKERD_V8_FLAGS (only the test
    // pool's newer one does, see vitest.config.ts), but it runs whatever workerd it is pointed at.
    if (options.v8Flags?.length) {
      env.MINIFLARE_WORKERD_PATH = join(ROOT, 'bench/v8-flags/workerd.sh');
      env.WORKERD_V8_FLAGS = options.v8Flags.join(' ');
    }
    const cacheVars = options.resultCache ? [] : ['--var', 'CACHE_TTL_SECONDS:0'];
    const extraVars = Object.entries(options.vars ?? {}).flatMap(([name, value]) => ['--var', `${name}:${value}`]);
    const started = performance.now();
    const child = spawn(
      WRANGLER,
      ['dev', ...[configs].flat().flatMap((c) => ['--config', c]), '--ip', '127.0.0.1', '--port', String(port), '--persist-to', persistTo, '--inspector-port', String(inspectorPort), '--show-interactive-dev-session=false', ...cacheVars, ...extraVars],
      // Own process group: wrangler starts workerd as a child, and stop() kills the group.
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env },
    );
    const dev = new WranglerDev(child, `http://127.0.0.1:${port}`, inspectorPort);
    WranglerDev.live.add(dev);
    try {
      await dev.waitReady(timeoutMs, options.vars?.API_KEY);
    } catch (err) {
      await dev.stop();
      throw err;
    }
    dev.readyMs = performance.now() - started;
    if (!dev.runtime) dev.discovered = await runtimeListening(child.pid!, port);
    return dev;
  }

  /**
   * The runtime's own socket: requests sent here skip wrangler's dev proxy (see PROXY_RESET) and
   * reach the same Workers and bindings, as a deployed Worker is reached without that hop.
   */
  get runtimeBase(): string {
    // With the inspector off (WRANGLER_INSPECTOR=off, see start), wrangler logs no address.
    if (!this.runtime && this.discovered) return this.discovered;
    if (!this.runtime) throw new Error(`wrangler dev did not log its runtime's address:\n${this.tail(2000)}`);
    return this.runtime;
  }

  /**
   * The DevTools WebSocket of one Worker's isolate on the runtime's own inspector (DevTools'
   * /json list, ids `core:user:<name>`). Free only when wrangler's inspector proxy is off
   * (`inspector: false`): the runtime takes one session per isolate. wrangler's proxy, for its
   * part, attaches to whichever of several configs' Workers reloaded last, not always the front.
   */
  async runtimeInspector(worker: string): Promise<string | undefined> {
    for (const port of await runtimePorts(this.child.pid!, Number(new URL(this.base).port))) {
      try {
        const list = (await (await fetch(`http://127.0.0.1:${port}/json`, { signal: AbortSignal.timeout(5000) })).json()) as Array<{ id?: string; webSocketDebuggerUrl?: string }>;
        const found = list.find((t) => t.id === `core:user:${worker}`)?.webSocketDebuggerUrl;
        if (found) return found;
      } catch {
        // not the inspector
      }
    }
    return undefined;
  }

  /** Polls GET /models, which reads manifests from R2 but creates no session. */
  private async waitReady(timeoutMs: number, apiKey?: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`wrangler dev exited (${this.child.exitCode}):\n${this.tail(3000)}`);
      try {
        const res = await fetch(`${this.base}/models`, apiKey ? { headers: { Authorization: `Bearer ${apiKey}` } } : {});
        await res.arrayBuffer();
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`wrangler dev did not answer in ${timeoutMs} ms:\n${this.tail(3000)}`);
  }

  async stop(): Promise<void> {
    WranglerDev.live.delete(this);
    const pid = this.child.pid;
    if (pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      return; // already gone
    }
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000));
    if ((await Promise.race([exited, timer])) === 'timeout') {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      await exited;
    }
  }

  /** POST /predict/<model> with the image as the multipart field `data`, as the zoo page's curl does. */
  async predict(modelId: string, jpeg: Uint8Array, filename = 'image.jpg'): Promise<Sample> {
    const form = new FormData();
    form.append('data', new Blob([jpeg], { type: 'image/jpeg' }), filename);
    const t0 = performance.now();
    try {
      const res = await fetch(`${this.base}/predict/${modelId}?topk=1`, { method: 'POST', body: form });
      const text = await res.text();
      const clientMs = performance.now() - t0;
      if (res.status !== 200) return { status: res.status, clientMs, proxyResets: 0, error: text.slice(0, 300) };
      const stages = parseServerTiming(res.headers.get('server-timing'));
      if (!stages) return { status: res.status, clientMs, proxyResets: 0, error: `no usable Server-Timing: ${res.headers.get('server-timing')}` };
      const body = JSON.parse(text) as { images?: Array<{ predictions?: Array<{ index?: number }> }> };
      const top1 = body.images?.[0]?.predictions?.[0]?.index;
      return { status: res.status, clientMs, proxyResets: 0, stages, ...(top1 !== undefined ? { top1 } : {}) };
    } catch (err) {
      return { status: 0, clientMs: performance.now() - t0, proxyResets: 0, error: describeFetchError(err) };
    }
  }

  /**
   * predict(), sending again (at most twice) when wrangler dev's proxy lost the connection to
   * the Worker. The Worker never saw those attempts fail: they are counted apart from errors,
   * and the latency runs from the first attempt.
   */
  async predictRetrying(modelId: string, jpeg: Uint8Array): Promise<Sample> {
    const t0 = performance.now();
    let resets = 0;
    for (;;) {
      const s = await this.predict(modelId, jpeg);
      if (s.status === 503 && PROXY_RESET.test(s.error ?? '') && resets < 2) {
        resets++;
        continue;
      }
      return { ...s, clientMs: performance.now() - t0, proxyResets: resets };
    }
  }
}

/**
 * Uploads a model (and its stages, when split) into the benchmark's local R2 under `servedId`
 * (so that variants of a zoo model live side by side), skipping the upload when exactly those
 * files are already there.
 */
export async function ensureUploaded(persistTo: string, servedId: string, dir: string, manifest: ModelManifest): Promise<boolean> {
  const markers = join(persistTo, '.bench-uploaded');
  const marker = join(markers, `${servedId}.sha256`);
  const content = [manifest.sha256, ...(manifest.stages ?? []).map((s) => s.sha256)].join(' ');
  try {
    if ((await readFile(marker, 'utf8')) === content) return false;
  } catch {
    // not uploaded yet
  }
  const staging = join(persistTo, '.bench-staging', servedId);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  for (const file of ['model.onnx', ...(manifest.stages ?? []).map((_, k) => stageFile(k))]) {
    await symlink(join(dir, file), join(staging, file));
  }
  await writeFile(join(staging, 'manifest.json'), JSON.stringify({ ...manifest, id: servedId }));
  await uploadModel(staging, { target: 'local', persistTo });
  await mkdir(markers, { recursive: true });
  await writeFile(marker, content);
  await rm(staging, { recursive: true, force: true });
  return true;
}

/** undici's fetch says only "fetch failed"; the reason (reset, closed socket, timeout) is its cause. */
function describeFetchError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause: unknown = err.cause;
  if (cause instanceof Error) {
    const code = (cause as Error & { code?: unknown }).code;
    return `${err.message}: ${typeof code === 'string' ? `${code} ` : ''}${cause.message}`;
  }
  return err.message;
}

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? done(address.port) : fail(new Error('no port'))));
    });
  });
}

/** Runs `total` requests with `concurrency` in flight; wall time from first send to last answer. */
export async function throughput(
  send: () => Promise<Sample>,
  total: number,
  concurrency: number,
): Promise<{ samples: Sample[]; wallMs: number }> {
  const samples: Sample[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        samples.push(await send());
      }
    }),
  );
  return { samples, wallMs: performance.now() - t0 };
}
