// Bindings that `wrangler types` cannot see in wrangler.toml.
declare namespace Cloudflare {
  interface Env {
    /** Secret (`wrangler secret put API_KEY`); when unset, requests need no key. */
    API_KEY?: string;
  }
}
