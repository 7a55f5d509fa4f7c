import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';
import { serveFixture } from './test/fixtures-server.ts';

/**
 * Two projects: `node` for tooling and pure logic (model generator, kernel vs reference vs
 * Pillow, decoders), `worker` for everything that runs inside workerd against local R2.
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'node',
          include: ['test/node/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              // Test-only binding: lets tests inside workerd read fixtures (models built by
              // the global setup, images) from disk in order to seed local R2.
              serviceBindings: { FIXTURES: serveFixture },
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
