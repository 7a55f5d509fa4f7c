/** Import for its effect, first: `.wasm` imports then work in Node as they do under wrangler (wasm-loader.mjs). */
import { register } from 'node:module';

register('./wasm-loader.mjs', import.meta.url);
