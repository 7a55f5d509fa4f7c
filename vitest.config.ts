import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';
import { serveFixture } from './test/fixtures-server.ts';
import { validateOpenApi } from './test/openapi-validator.ts';
import { NEEDS_SHARED_DATA, SHARED_DATA, hasSharedData } from './test/shared-data.ts';

// workerd 1.20260815 (the pool's) can deadlock when V8 tiers up onnxruntime's 14 MB wasm
// module in the background while the isolate is busy: a background compile job waits for a
// GC the main thread never runs, and the test run hangs with workerd spinning. Liftoff-only
// code never tiers up. It is slower, which the tests do not measure (the benchmark does,
// under wrangler dev, with V8's defaults).
process.env.MINIFLARE_WORKERD_V8_FLAGS ??= '--liftoff-only';

// The tests that read the shared corpus beside the repository are left out on a developer's
// machine that lacks it, loudly; CI (CI=true) runs them, and they fail.
const skipShared = !hasSharedData() && process.env.CI !== 'true';
if (skipShared) {
  console.warn(`\n${SHARED_DATA} is missing: skipping ${NEEDS_SHARED_DATA.join(', ')} (set EDGE_RESNET_SHARED_DATA)\n`);
}

const noStageWorker = () =>
  Response.json({ code: 503, type: 'model_unavailable', message: 'no stage Worker in the unit-test pool' }, { status: 503 });

/**
 * Three projects: `node` for tooling and pure logic (model generator, kernel vs reference vs
 * Pillow, decoders), `worker` for everything that runs inside workerd against local R2, and
 * `load`, bursts and a soak against a fresh `wrangler dev`, after the other two.
 */
export default defineConfig({
  test: {
    // The JSON report lets .ci/run print a one-line summary that CI reads.
    reporters: ['default', 'json', './test/watchdog-reporter.ts'],
    outputFile: { json: 'test-results/vitest.json' },
    // The Worker logs one JSON line per request (src/middleware/request-log): thousands in a
    // run, so they are not echoed. test/worker/request-log.test.ts reads them itself.
    onConsoleLog: (log) => !log.startsWith('{"id":'),
    projects: [
      {
        test: {
          name: 'node',
          include: ['test/node/**/*.test.ts'],
          exclude: skipShared ? NEEDS_SHARED_DATA : [],
          setupFiles: ['test/node/setup-wasm.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        // Bursts and a soak against a real wrangler dev (test/load/burst.test.ts), and the
        // local runtime's keep-alive race they avoid. They run last and alone (groupOrder),
        // one file at a time: other tests beside them would make their timings say nothing.
        test: {
          name: 'load',
          include: ['test/load/**/*.test.ts'],
          sequence: { groupOrder: 1 },
          fileParallelism: false,
          environment: 'node',
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              // The result cache (src/cache) off by default: the pool's Cache API persists
              // across the tests of a file, and a hit would answer where a test exercises
              // decoding, admission or a failing model load. test/worker/cache*.test.ts turn
              // it on per request.
              bindings: {
                CACHE_TTL_SECONDS: '0',
                // Jobs (test/worker/jobs*.test.ts): webhooks to the local receiver on
                // 127.0.0.1 over http, signed with a test secret, retries a second apart.
                CALLBACK_HOSTS: '127.0.0.1',
                ALLOW_HTTP_CALLBACKS: 'true',
                WEBHOOK_SECRET: 'test-webhook-secret',
                RETRY_BASE_SECONDS: '1',
              },
              // Test-only binding: lets tests inside workerd read fixtures (models built by
              // the global setup, images) from disk in order to seed local R2.
              serviceBindings: {
                FIXTURES: serveFixture,
                // test/worker/openapi.test.ts: the OpenAPI validator runs on the Node side.
                OPENAPI_VALIDATOR: validateOpenApi,
                // The stage Workers of wrangler.toml's service bindings are not in this pool:
                // test/worker/stages.test.ts binds the stage app itself, and
                // test/node/e2e.test.ts runs the real ones under wrangler dev.
                STAGE_1: noStageWorker,
                STAGE_2: noStageWorker,
              },
            },
          }),
        ],
        test: {
          name: 'worker',
          include: ['test/worker/**/*.test.ts'],
          globalSetup: ['test/worker/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
