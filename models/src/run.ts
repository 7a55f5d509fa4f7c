import { spawn } from 'node:child_process';
import { ROOT } from './paths';

/** Runs a command in the repository; rejects with the tail of its output when it fails. */
export function run(command: string, args: string[]): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', fail);
    child.on('close', (code) =>
      code === 0 ? done() : fail(new Error(`${command} ${args.slice(0, 5).join(' ')} failed (${code}):\n${output.slice(-2000)}`)),
    );
  });
}
