/**
 * Making a model's session from R2: a whole model; a split model (manifest `stages`) as its
 * first stage here chained with its later stages in their own Workers (src/stages/client.ts);
 * or, in a stage Worker, its one stage. Model bytes are not kept once the session exists.
 */
import { modelUnavailable, notFound } from '../errors';
import { createSession, type Session } from '../onnx/session';
import { chainSessions, remoteStage, stageBinding, type StageBindings } from '../stages/client';
import { modelKey, stageKey } from './manifest';
import type { LoadedModel } from './sessions';
import type { ModelFile, ModelStore } from './store';

export async function loadModel(store: ModelStore, id: string, bindings: StageBindings, stageTimeoutMs: number): Promise<LoadedModel> {
  const started = Date.now();
  const manifest = await store.manifest(id);
  if (!manifest.stages) {
    const session = await openSession(store, id, modelKey(id), 'model.onnx', manifest);
    return { manifest, session, loadMs: Date.now() - started, loadedAt: new Date().toISOString() };
  }
  // Every binding is checked before anything is loaded: a missing one is a deployment error.
  const remote = manifest.stages.slice(1).map((spec, i) => {
    const fetcher = bindings(stageBinding(i + 1));
    if (!fetcher) {
      throw modelUnavailable(`model ${id} runs in ${manifest.stages!.length} stages and needs the service binding ${stageBinding(i + 1)} (see README, Deploying)`);
    }
    return remoteStage(fetcher, id, i + 1, spec, stageTimeoutMs);
  });
  const first = await openSession(store, id, stageKey(id, 0), 'stage 0', manifest.stages[0]!);
  return { manifest, session: chainSessions([first, ...remote]), remote, loadMs: Date.now() - started, loadedAt: new Date().toISOString() };
}

/** Stage `stage` of a split model, for the stage Worker that runs it. */
export async function loadStage(store: ModelStore, id: string, stage: number): Promise<LoadedModel> {
  const started = Date.now();
  const manifest = await store.manifest(id);
  const spec = manifest.stages?.[stage];
  if (!spec) throw notFound(`model ${id} has no stage ${stage}`);
  const session = await openSession(store, id, stageKey(id, stage), `stage ${stage}`, spec);
  return { manifest, session, loadMs: Date.now() - started, loadedAt: new Date().toISOString() };
}

/** Reads one model file from R2, checked against its manifest entry, and makes a session of it. */
async function openSession(store: ModelStore, id: string, key: string, what: string, file: ModelFile): Promise<Session> {
  let bytes: Uint8Array | undefined = await store.verifiedFile(id, key, what, file);
  try {
    return await createSession(bytes, {
      inputName: file.input.name,
      outputName: file.output.name,
      disablePrepacking: file.session?.disablePrepacking,
    });
  } catch (err) {
    throw modelUnavailable(`model ${id}: ${what}: session creation failed: ${err instanceof Error ? err.message : String(err)}`, err);
  } finally {
    bytes = undefined; // ORT copied the model into its heap; let the isolate reclaim ours now
  }
}
