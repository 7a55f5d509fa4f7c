/**
 * The jobs feature's settings (wrangler.toml vars, the WEBHOOK_SECRET secret), parsed once per
 * `env` object as src/config.ts does for the rest: a misconfigured value throws, naming it.
 */
import { hostRules, type HostRules } from '../url/hosts';

export interface JobsConfig {
  /** CALLBACK_HOSTS as host rules: when `allowed` is non-empty, the only hosts called back. */
  callbackRules: HostRules;
  /** ALLOW_HTTP_CALLBACKS: plain http callbacks (local development and tests). */
  allowHttpCallbacks: boolean;
  /** First retry delay; attempt n waits base * 2^(n-1) seconds. */
  retryBaseSeconds: number;
  /** The consumer's max_retries (wrangler.toml): a message gets max_retries + 1 attempts. */
  maxRetries: number;
  webhookTimeoutMs: number;
  /** Name of the dead-letter queue: its batches are handled as final failures. */
  deadLetterQueue: string;
  webhookSecret: string | undefined;
}

const cache = new WeakMap<object, JobsConfig>();

export function jobsConfig(env: Env): JobsConfig {
  let config = cache.get(env);
  if (!config) {
    config = {
      callbackRules: hostRules(list(env.CALLBACK_HOSTS), []),
      allowHttpCallbacks: flag('ALLOW_HTTP_CALLBACKS', env.ALLOW_HTTP_CALLBACKS),
      retryBaseSeconds: int('RETRY_BASE_SECONDS', env.RETRY_BASE_SECONDS, 10, 1),
      maxRetries: int('JOB_MAX_RETRIES', env.JOB_MAX_RETRIES, 5, 0),
      webhookTimeoutMs: int('WEBHOOK_TIMEOUT_MS', env.WEBHOOK_TIMEOUT_MS, 10_000, 1),
      deadLetterQueue: env.JOBS_DEAD_LETTER_QUEUE || 'edge-resnet-moderation-dlq',
      webhookSecret: env.WEBHOOK_SECRET || undefined,
    };
    cache.set(env, config);
  }
  return config;
}

const list = (raw: string | undefined) =>
  (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function flag(name: string, raw: string | undefined): boolean {
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  throw new Error(`${name} must be "true" or "false", got "${raw}"`);
}

function int(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`);
  return value;
}
