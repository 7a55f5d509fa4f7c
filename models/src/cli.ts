/**
 * The models CLI: `npm run models -- <command> ...`. Each command lives in
 * models/src/commands/<name>.ts and exports a `Command`; this file only dispatches.
 */
import './node-wasm';
import type { Command } from './commands/command';
import { evalCommand } from './commands/eval';
import { fetchCommand } from './commands/fetch';
import { list } from './commands/list';
import { policyCommand } from './commands/policy';
import { quantize } from './commands/quantize';
import { split } from './commands/split';
import { synth } from './commands/synth';
import { upload } from './commands/upload';
import { verify } from './commands/verify';
import { view } from './commands/view';

// In the order of the pipeline: make or fetch fp32, quantize, split what one isolate cannot hold, check, ship, measure, look.
const COMMANDS: Command[] = [fetchCommand, synth, quantize, split, verify, upload, evalCommand, view, list, policyCommand];

function usage(): string {
  return ['usage: npm run models -- <command> [options]', '', ...COMMANDS.map((c) => `  ${c.usage}`)].join('\n');
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    console.error(name && name !== '--help' ? `unknown command "${name}"\n\n${usage()}` : usage());
    process.exitCode = name && name !== '--help' ? 2 : 0;
    return;
  }
  await command.run(rest);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
