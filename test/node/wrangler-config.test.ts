/**
 * Settings that wrangler.toml states twice because the runtime cannot tell the Worker: the
 * queue's max_retries is not visible to its consumer, which needs it to know its last attempt.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from '../../models/src/paths';

/** `key = value` lines of each `[[queues.consumers]]` table and of `[vars]` (flat TOML only). */
function tables(toml: string): { consumers: Array<Record<string, string>>; vars: Record<string, string> } {
  const consumers: Array<Record<string, string>> = [];
  const vars: Record<string, string> = {};
  let current: Record<string, string> | undefined;
  for (const raw of toml.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line.startsWith('[')) {
      current = line === '[[queues.consumers]]' ? {} : line === '[vars]' ? vars : undefined;
      if (line === '[[queues.consumers]]') consumers.push(current!);
      continue;
    }
    const m = /^(\w+)\s*=\s*"?([^"]*)"?$/.exec(line);
    if (m && current) current[m[1]!] = m[2]!;
  }
  return { consumers, vars };
}

it('the moderation queue retries JOB_MAX_RETRIES times and has a dead-letter queue with a consumer', async () => {
  const { consumers, vars } = tables(await readFile(join(ROOT, 'wrangler.toml'), 'utf8'));
  const moderation = consumers.find((c) => c.queue === 'edge-resnet-moderation');
  expect(moderation).toBeDefined();
  expect(moderation!.max_retries).toBe(vars.JOB_MAX_RETRIES);
  expect(moderation!.dead_letter_queue).toBeTruthy();
  expect(consumers.map((c) => c.queue)).toContain(moderation!.dead_letter_queue);
});
