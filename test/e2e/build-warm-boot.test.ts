/**
 * End to end for the warm path: a VM whose disk is a qcow2 overlay of the golden image boots to its login
 * prompt, mounts its own (grown, re-UUIDed) root and its swap, and is who it was told to be. A cold-built VM is
 * booted in the same run so the boot times can be compared (printed; both under the same load).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SerialConsole } from '../harness/serial.js';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, uniqueName, type TestEnv } from '../harness/env.js';

describe('a warm-built (qcow2 overlay) VM boots', () => {
  let env: TestEnv;
  let bundle: string;
  const warm = uniqueName('vmfe2ew');
  const cold = uniqueName('vmfe2ec');
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const boot: Record<string, number> = {};

  beforeAll(async () => {
    await ensureLibvirt();
    bundle = await ensureTemplate();
    env = await makeTestEnv('storage:\n  clone: qcow2\n');
    await writeFile(join(env.dir, 'pw'), `${password}\n`, { mode: 0o600 });
  });

  afterAll(async () => {
    if (!env) return;
    for (const n of [warm, cold]) await env.cli(['vm', 'destroy', n]);
    await env.cleanup();
  });

  const args = (name: string, clone: string) => [
    'vm', 'build', name, '--bundle', bundle, '--memory', '768M', '--disk', '3G', '--swap', '256M', '--net', 'user', '--wait',
    '--root-password-file', join(env.dir, 'pw'), '--clone', clone, '--json',
  ];

  it.each([
    { name: () => warm, clone: 'qcow2' },
    { name: () => cold, clone: 'off' },
  ])('builds with --clone $clone and boots to the login prompt', async ({ name: nameOf, clone }) => {
    const name = nameOf();
    const r = await env.cli(args(name, clone), { timeoutMs: 900_000 });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const result = events.at(-1)?.result as { loginLine: string; bootSeconds: number; diskPath: string };
    expect(result.loginLine).toBe(`${name} login:`);
    boot[clone] = result.bootSeconds;
    expect(result.diskPath.endsWith(clone === 'qcow2' ? '.qcow2' : '.img')).toBe(true);

    const pty = (await execa('virsh', ['-q', '-c', env.config.libvirt.uri, 'ttyconsole', name])).stdout.trim();
    const con = SerialConsole.openPty(pty);
    try {
      await con.login('root', password);
      expect(await con.run('hostname')).toBe(name);
      expect(await con.run('findmnt -no SOURCE /')).toBe('/dev/vda1');
      // Under heavy load systemd can give up waiting for the swap device (its 90 s job timeout) while the rest boots;
      // then fstab must still name the right device: `swapon -a` activates it from fstab.
      let swaps = await con.run('swapon --show=NAME --noheadings');
      if (swaps !== '/dev/vda2') {
        await con.run('swapon -a');
        swaps = await con.run('swapon --show=NAME --noheadings');
      }
      expect(swaps).toBe('/dev/vda2');
      // The root filesystem was grown to the 3 GiB disk (minus swap), not left at the golden's size.
      expect(Number(await con.run('df -B1M --output=size / | tail -1'))).toBeGreaterThan(2400);
      expect(await con.run('grep -c . /etc/machine-id')).toBe('1');
    } finally {
      con.close();
    }
  });

  it('reports both boot times', () => {
    console.log(`boot to login prompt: warm (qcow2 overlay) ${boot.qcow2?.toFixed(1)} s, cold (raw) ${boot.off?.toFixed(1)} s`);
    expect(boot.qcow2).toBeGreaterThan(0);
    expect(boot.off).toBeGreaterThan(0);
  });

  it('destroy removes both', async () => {
    for (const n of [warm, cold]) {
      expect((await env.cli(['vm', 'destroy', n])).exitCode).toBe(0);
      expect(await leftovers(env, n)).toEqual([]);
    }
  });
});
