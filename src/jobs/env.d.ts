// Secrets of the jobs feature: `wrangler types` cannot see them in wrangler.toml.
declare namespace Cloudflare {
  interface Env {
    /** Secret (`wrangler secret put WEBHOOK_SECRET`): signs webhooks; without it, callbacks are refused. */
    WEBHOOK_SECRET?: string;
  }
}
