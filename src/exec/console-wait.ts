/**
 * Waits for a pattern to appear in a growing file (the serial console log libvirt's virtlogd writes). Polls
 * by size so it works whether the file exists yet or not and costs nothing while the guest boots.
 */
import { open, stat } from 'node:fs/promises';
import { VmforgeError } from '../errors.js';

export interface WaitResult {
  line: string;
  elapsedMs: number;
}

export async function waitForPattern(
  path: string,
  pattern: RegExp,
  opts: { timeoutMs: number; signal?: AbortSignal; pollMs?: number; onFail?: () => Promise<string | null> },
): Promise<WaitResult> {
  const started = performance.now();
  const poll = opts.pollMs ?? 250;
  let offset = 0;
  let carry = '';
  for (;;) {
    if (opts.signal?.aborted) throw new VmforgeError('CANCELLED', 'cancelled while waiting for the guest');
    const size = await stat(path).then((s) => s.size, () => -1);
    if (size >= 0 && size < offset) {
      offset = 0; // file was truncated (domain restarted with append='off')
      carry = '';
    }
    if (size > offset) {
      const fh = await open(path, 'r');
      try {
        const buf = Buffer.alloc(size - offset);
        await fh.read(buf, 0, buf.length, offset);
        offset = size;
        const text = carry + buf.toString('utf8');
        const lines = text.split(/\r?\n|\r/);
        carry = lines.pop() ?? '';
        for (const l of [...lines, carry]) {
          const clean = stripAnsi(l);
          if (pattern.test(clean)) return { line: clean.trim(), elapsedMs: performance.now() - started };
        }
      } finally {
        await fh.close();
      }
    }
    if (performance.now() - started > opts.timeoutMs) {
      const extra = opts.onFail ? await opts.onFail() : null;
      throw new VmforgeError('TIMEOUT', `no ${pattern.source} on the console within ${Math.round(opts.timeoutMs / 1000)} s${extra ? `; last console output:\n${extra}` : ''}`, {
        hint: `read the whole console log at ${path}`,
      });
    }
    await new Promise((r) => setTimeout(r, poll));
  }
}

export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][AB0-2]|\x1bc/g, '');
}

export async function tailFile(path: string, bytes = 2000): Promise<string | null> {
  try {
    const s = await stat(path);
    const fh = await open(path, 'r');
    try {
      const len = Math.min(bytes, s.size);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, s.size - len);
      return stripAnsi(buf.toString('utf8'));
    } finally {
      await fh.close();
    }
  } catch {
    return null;
  }
}
