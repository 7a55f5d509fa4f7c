import { parseArgs, type ParseArgsConfig } from 'node:util';
import { MODEL_IDS } from '../../../src/models/manifest';

export interface Command {
  name: string;
  /** One line: the command and its options, as shown by `npm run models -- --help`. */
  usage: string;
  run(argv: string[]): Promise<void>;
}

/** node:util's parseArgs with strict checking and the usage line in every error. */
export function parse<T extends ParseArgsConfig['options']>(argv: string[], usage: string, options: T) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\nusage: ${usage}`);
  }
}

/** `all` or one zoo id, checked. */
export function modelIds(target: string | undefined, usage: string): string[] {
  if (!target) throw new Error(`which model? usage: ${usage}`);
  if (target === 'all') return [...MODEL_IDS];
  if (!(MODEL_IDS as readonly string[]).includes(target)) {
    throw new Error(`unknown model "${target}"; one of: all, ${MODEL_IDS.join(', ')}`);
  }
  return [target];
}
