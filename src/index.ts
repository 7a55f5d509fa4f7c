import { env } from 'cloudflare:workers';
import { createApp } from './app';
import { warmStart } from './models/registry';

await warmStart(env);

export default createApp() satisfies ExportedHandler<Env>;
