import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const MAIN = join(import.meta.dirname, 'main.ts');

/** Runs the CLI with its stdout read once and then closed, as `vmforge ... | head -1` does. */
function runClosingEarly(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('a reader that closes the pipe early', () => {
  it('ends the CLI quietly with its own status, no EPIPE stack trace', async () => {
    // Long help (every cache subcommand) is written in more than one chunk's worth of writes.
    for (const args of [['cache', '--help'], ['--help']]) {
      const r = await runClosingEarly(args);
      expect(r.stderr, args.join(' ')).not.toMatch(/EPIPE|Unhandled 'error' event/);
      expect(r.code, args.join(' ')).toBe(0);
    }
  }, 60_000);
});
