import { env } from 'cloudflare:workers';
import { createApp } from './app';
import { warmStart } from './models/registry';

await warmStart(env);

export default createApp() satisfies ExportedHandler<Env>;

/** RPC for Workers bound to this one as a service (src/rpc). */
export { Classifier } from './rpc';
