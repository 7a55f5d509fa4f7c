/**
 * Diagnostic Worker of bench/bounds-checks.ts: one session through the project's own
 * onnxruntime path (src/onnx/session.ts), timed inside the isolate.
 *
 *   POST /load?input=<name>&output=<name>[&prepacking=0]   body: model.onnx
 *     creates the session, runs once; answers { createMs, firstRunMs, top1 }
 *   GET /run?n=K   runs K inferences; answers { times: [ms, ...] }
 *
 * workerd run locally advances performance.now() during execution (deployed Workers do not).
 */
import { createSession, type Session } from '../../src/onnx/session';
import { float32, type Tensor } from '../../src/onnx/tensor';

/** Same values as input() in bench/bounds-checks.ts, which Node's runs read from a file. */
function input(): Tensor {
  const x = new Float32Array(3 * 224 * 224);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 7919) % 1000) / 500 - 1;
  return float32(x, [1, 3, 224, 224]);
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

let session: Session | undefined;
const x = input();

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (request.method === 'POST' && url.pathname === '/load') {
      const inputName = url.searchParams.get('input');
      const outputName = url.searchParams.get('output');
      if (!inputName || !outputName) return new Response('input and output names required', { status: 400 });
      await session?.release();
      const model = new Uint8Array(await request.arrayBuffer());
      const t0 = performance.now();
      session = await createSession(model, { inputName, outputName, disablePrepacking: url.searchParams.get('prepacking') === '0' });
      const createMs = performance.now() - t0;
      const t1 = performance.now();
      const y = await session.run(x);
      return Response.json({ createMs, firstRunMs: performance.now() - t1, top1: argmax(y.data) });
    }
    if (request.method === 'GET' && url.pathname === '/run') {
      if (!session) return new Response('POST /load first', { status: 409 });
      const times: number[] = [];
      for (let i = 0, n = Number(url.searchParams.get('n') ?? '1'); i < n; i++) {
        const t = performance.now();
        await session.run(x);
        times.push(performance.now() - t);
      }
      return Response.json({ times });
    }
    return new Response('not found', { status: 404 });
  },
} satisfies ExportedHandler;
