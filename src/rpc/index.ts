/**
 * RPC for other Workers (issue #8 part 5): `Classifier`, bound by a consumer as a service
 * with `entrypoint = "Classifier"`. Exceptions thrown across RPC arrive as bare messages, so
 * every outcome is a value: `{ ok: true, cache, ...answer }` or `{ ok: false, error }` with the code
 * and type the same failure has over HTTP. Types for consumers: ./types.ts (`edge-resnet/rpc`).
 */
import { WorkerEntrypoint } from 'cloudflare:workers';
import { ApiError, hiddenCause } from '../errors';
import { classifyCall, moderateCall, type Answered } from './calls';
import type { ClassifierRpc, ClassifyOptions, ClassifyResult, ImageInput, ModerateResult, PolicyInput, RpcError, RpcResult } from './types';

export class Classifier extends WorkerEntrypoint<Env> implements ClassifierRpc {
  /** As `POST /predict/:model`: top-K classes and, if asked, concepts. */
  classify(image: ImageInput, options?: ClassifyOptions): Promise<ClassifyResult> {
    return settle('classify', () => classifyCall({ env: this.env, ctx: this.ctx }, image, options));
  }

  /** As `POST /moderate`: a decision per the named, inline or default policy. */
  moderate(image: ImageInput, policy?: PolicyInput): Promise<ModerateResult> {
    return settle('moderate', () => moderateCall({ env: this.env, ctx: this.ctx }, image, policy));
  }
}

async function settle<T extends object>(method: string, work: () => Promise<Answered<T>>): Promise<RpcResult<T>> {
  try {
    const { body, cache } = await work();
    return { ok: true, cache, ...body };
  } catch (err) {
    return { ok: false, error: rpcError(method, err) };
  }
}

/** An ApiError as its JSON (what HTTP sends); anything else is our bug: logged, and opaque to the caller. */
export function rpcError(method: string, err: unknown): RpcError {
  if (err instanceof ApiError) {
    const cause = hiddenCause(err);
    if (cause !== undefined) console.error(`RPC ${method}: ${err.message}:`, cause);
    const error: RpcError = err.toJSON();
    return err.retryAfter === undefined ? error : { ...error, retryAfter: err.retryAfter };
  }
  console.error(`RPC ${method}:`, err);
  return { code: 500, type: 'internal', message: 'internal error' };
}
