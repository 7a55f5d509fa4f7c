/** Entry point of the stage Workers (wrangler.stage-1.toml, wrangler.stage-2.toml): see src/stages/server.ts. */
import { createStageApp } from './stages/server';

export default createStageApp() satisfies ExportedHandler<Env>;
