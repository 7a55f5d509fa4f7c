import { env } from 'cloudflare:workers';
import { createApp } from './app';
import { handleBatch } from './jobs/consumer';
import { warmStart } from './models/registry';

await warmStart(env);

const app = createApp();

export default {
  fetch: app.fetch,
  // Moderation jobs and UPLOADS notifications, and their dead-letter queue (src/jobs).
  queue: handleBatch,
} satisfies ExportedHandler<Env>;

/** RPC for Workers bound to this one as a service (src/rpc). */
export { Classifier } from './rpc';
