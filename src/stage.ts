/** Entry point of the stage Workers (wrangler.stage-1.toml, wrangler.stage-2.toml): see src/stages/server.ts. */
import { env } from 'cloudflare:workers';
import { warmStart } from './models/registry';
import { createStageApp } from './stages/server';

await warmStart(env);

export default createStageApp() satisfies ExportedHandler<Env>;
