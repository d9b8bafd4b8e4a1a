import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../../errors.js';
import { commandFailed, type CommandRunner, type RunOptions, type RunResult } from '../runner.js';
import { attachLoop, detachLoop as detachLoopReal, parseLosetupJson, partitionDevice } from './loop.js';

/** Runner that answers from a script and records every argv. */
class ScriptedRunner implements CommandRunner {
  calls: string[][] = [];
  constructor(private readonly answer: (argv: readonly string[], n: number) => RunResult) {}
  async run(argv: readonly string[], _opts?: RunOptions): Promise<RunResult> {
    this.calls.push([...argv]);
    return this.answer(argv, this.calls.length);
  }
}

const ok = (stdout = ''): RunResult => ({ stdout, stderr: '', exitCode: 0 });

const LIST = JSON.stringify({
  loopdevices: [
    { name: '/dev/loop0', 'back-file': '/var/tmp/a.raw', offset: 1048576, sizelimit: 4096, autoclear: false },
    { name: '/dev/loop1', 'back-file': '/var/tmp/b.raw (deleted)', offset: 0, sizelimit: 0, autoclear: true },
  ],
});

describe('parseLosetupJson', () => {
  it('reads devices, backing files (without the deleted marker), offsets', () => {
    expect(parseLosetupJson(LIST)).toEqual([
      { device: '/dev/loop0', backFile: '/var/tmp/a.raw', offset: 1048576, sizelimit: 4096, autoclear: false },
      { device: '/dev/loop1', backFile: '/var/tmp/b.raw', offset: 0, sizelimit: 0, autoclear: true },
    ]);
  });
  it('treats empty output as no loop devices', () => {
    expect(parseLosetupJson('')).toEqual([]);
    expect(parseLosetupJson('\n')).toEqual([]);
  });
});

describe('partitionDevice', () => {
  it('adds p after a trailing digit', () => {
    expect(partitionDevice('/dev/loop3', 1)).toBe('/dev/loop3p1');
    expect(partitionDevice('/dev/nbd12', 2)).toBe('/dev/nbd12p2');
    expect(partitionDevice('/dev/sda', 2)).toBe('/dev/sda2');
  });
});

describe('attachLoop', () => {
  it('passes offset and size limit and returns the device', async () => {
    const r = new ScriptedRunner(() => ok('/dev/loop4\n'));
    const ref = await attachLoop(r, { file: '/nonexistent/x.raw', offsetBytes: 1048576, sizeBytes: 2097152 });
    expect(r.calls).toEqual([['losetup', '--find', '--show', '--offset', '1048576', '--sizelimit', '2097152', '/nonexistent/x.raw']]);
    expect(ref).toEqual({ device: '/dev/loop4', backFile: '/nonexistent/x.raw', offset: 1048576 });
  });

  it('retries when another process took the free device first', async () => {
    const r = new ScriptedRunner((argv, n) => {
      if (n < 3) throw commandFailed(argv, 1, 'losetup: x.raw: failed to set up loop device: Device or resource busy');
      return ok('/dev/loop7\n');
    });
    expect((await attachLoop(r, { file: '/nonexistent/x.raw' })).device).toBe('/dev/loop7');
    expect(r.calls).toHaveLength(3);
  });

  it('does not retry other failures, and gives up after the last attempt', async () => {
    const fatal = new ScriptedRunner((argv) => {
      throw commandFailed(argv, 1, 'losetup: x.raw: failed to set up loop device: Permission denied');
    });
    await expect(attachLoop(fatal, { file: '/x.raw' })).rejects.toThrow(/Permission denied/);
    expect(fatal.calls).toHaveLength(1);
    const busy = new ScriptedRunner((argv) => {
      throw commandFailed(argv, 1, 'Device or resource busy');
    });
    await expect(attachLoop(busy, { file: '/x.raw', attempts: 2 })).rejects.toBeInstanceOf(VmforgeError);
    expect(busy.calls).toHaveLength(2);
  });
});

describe('detachLoop', () => {
  const listing = (argv: readonly string[]) => (argv[1] === '--list' ? ok(LIST) : ok());
  // These exercise the losetup listing: no sysfs answers here.
  const detachLoop = (r: CommandRunner, ref: Parameters<typeof detachLoopReal>[1]) => detachLoopReal(r, ref, { sysBlock: '/nonexistent-sys-block' });

  it('reads the device from sysfs when it can, without a losetup --list', async () => {
    const sys = await mkdtemp(join(tmpdir(), 'vmforge-sysblock-'));
    try {
      await mkdir(join(sys, 'loop3', 'loop'), { recursive: true });
      await writeFile(join(sys, 'loop3', 'loop', 'backing_file'), '/var/tmp/a.raw\n');
      await writeFile(join(sys, 'loop3', 'loop', 'offset'), '1048576\n');
      const r = new ScriptedRunner(() => ok());
      expect(await detachLoopReal(r, { device: '/dev/loop3', backFile: '/var/tmp/a.raw', offset: 1048576 }, { sysBlock: sys })).toBe('detached');
      expect(r.calls).toEqual([['losetup', '--detach', '/dev/loop3']]);
      const r2 = new ScriptedRunner(() => ok());
      expect(await detachLoopReal(r2, { device: '/dev/loop3', backFile: '/var/tmp/other.raw', offset: 1048576 }, { sysBlock: sys })).toBe('gone');
      expect(r2.calls).toEqual([]);
    } finally {
      await rm(sys, { recursive: true, force: true });
    }
  });

  it('detaches a device still attached to our file and offset', async () => {
    const r = new ScriptedRunner(listing);
    expect(await detachLoop(r, { device: '/dev/loop0', backFile: '/var/tmp/a.raw', offset: 1048576 })).toBe('detached');
    expect(r.calls.at(-1)).toEqual(['losetup', '--detach', '/dev/loop0']);
  });

  it('leaves alone a device that is gone or now backs another file or offset', async () => {
    for (const ref of [
      { device: '/dev/loop5', backFile: '/var/tmp/a.raw', offset: 0 },
      { device: '/dev/loop0', backFile: '/var/tmp/other.raw', offset: 1048576 },
      { device: '/dev/loop0', backFile: '/var/tmp/a.raw', offset: 0 },
    ]) {
      const r = new ScriptedRunner(listing);
      expect(await detachLoop(r, ref)).toBe('gone');
      expect(r.calls.every((c) => c[1] === '--list')).toBe(true);
    }
  });

  it('treats a device that vanished in between as gone', async () => {
    const r = new ScriptedRunner((argv) => {
      if (argv[1] === '--list') return ok(LIST);
      throw commandFailed(argv, 1, 'losetup: /dev/loop0: detach failed: No such device or address');
    });
    expect(await detachLoop(r, { device: '/dev/loop0', backFile: '/var/tmp/a.raw', offset: 1048576 })).toBe('gone');
  });
});
