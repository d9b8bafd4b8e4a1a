import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VmforgeError } from '../errors.js';
import { HostProcessRunner } from './runner.js';

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return e instanceof VmforgeError ? `${e.code}: ${e.message}` : `not a VmforgeError: ${String(e)}`;
  }
  return 'resolved';
};

describe('HostProcessRunner.run (real processes)', () => {
  const r = new HostProcessRunner();
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmforge-runner-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('returns stdout and stderr whole, final newline kept', async () => {
    const res = await r.run(['printf', 'a\\nb\\n']);
    expect(res).toEqual({ stdout: 'a\nb\n', stderr: '', exitCode: 0 });
    const both = await r.run(['ls', join(dir, 'nope'), dir], { okCodes: [2] });
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toMatch(/nope/);
  });

  it('runs in the C locale with the caller env on top of the process env, in cwd', async () => {
    const res = await r.run(['env'], { env: { VMFORGE_RUNNER_TEST: 'x' }, cwd: dir });
    expect(res.stdout).toMatch(/^LC_ALL=C$/m);
    expect(res.stdout).toMatch(/^VMFORGE_RUNNER_TEST=x$/m);
    expect(res.stdout).toMatch(/^PATH=/m);
    expect((await r.run(['pwd'], { cwd: dir })).stdout).toBe(`${dir}\n`);
  });

  it('feeds input from a string or a file; without input stdin is at EOF', async () => {
    expect((await r.run(['cat'], { input: 'hello' })).stdout).toBe('hello');
    const f = join(dir, 'in.txt');
    await writeFile(f, 'from file\n');
    expect((await r.run(['cat'], { inputFile: f })).stdout).toBe('from file\n');
    expect((await r.run(['cat'])).stdout).toBe('');
    expect(await codeOf(r.run(['cat'], { inputFile: join(dir, 'missing') }))).toMatch(/^INVALID_INPUT: cannot read/);
  });

  it('a non-zero exit is COMMAND_FAILED with the argv and the tail of stderr', async () => {
    expect(await codeOf(r.run(['ls', join(dir, 'nope')]))).toMatch(/^COMMAND_FAILED: ls \S+nope exited with 2: .*No such file/);
    expect(await codeOf(r.run(['false']))).toBe('COMMAND_FAILED: false exited with 1');
  });

  it('a missing program is MISSING_TOOL', async () => {
    expect(await codeOf(r.run(['vmforge-no-such-program-xyz']))).toMatch(/^MISSING_TOOL: /);
  });

  it('a timeout kills the program and is TIMEOUT', async () => {
    const t = performance.now();
    expect(await codeOf(r.run(['sleep', '30'], { timeoutMs: 200 }))).toBe('TIMEOUT: sleep did not finish within 200 ms');
    expect(performance.now() - t).toBeLessThan(10_000);
  });

  it('an abort kills the program and is CANCELLED, also when aborted before the start', async () => {
    const ac = new AbortController();
    const p = r.run(['sleep', '30'], { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    expect(await codeOf(p)).toBe('CANCELLED: sleep was cancelled');
    expect(await codeOf(r.run(['true'], { signal: ac.signal }))).toBe('CANCELLED: true was cancelled');
  });

  it('refuses a shell', async () => {
    expect(await codeOf(r.run(['sh', '-c', 'true']))).toMatch(/^INTERNAL: refusing to start a shell/);
  });

  it('a program killed by a signal is COMMAND_FAILED naming the signal', async () => {
    expect(await codeOf(r.run(['perl', '-e', 'kill 9, $$']))).toMatch(/^COMMAND_FAILED: .*killed by SIGKILL/);
  });
});
