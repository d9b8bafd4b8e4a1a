/**
 * End to end, on real parts: the debootstrapped Debian template, loop devices, GRUB, libvirtd and QEMU.
 * Build with --wait, log in on the serial console and check the guest from inside, destroy, and prove that
 * nothing of the VM remains on the host.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SerialConsole } from '../harness/serial.js';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, uniqueName, type TestEnv } from '../harness/env.js';

describe('vm build --wait boots a real VM', () => {
  let env: TestEnv;
  let bundle: string;
  const name = uniqueName('vmfe2e');
  const password = `pw-${Math.random().toString(36).slice(2)}`;

  beforeAll(async () => {
    await ensureLibvirt();
    bundle = await ensureTemplate();
    env = await makeTestEnv();
    await writeFile(join(env.dir, 'pw'), `${password}\n`, { mode: 0o600 });
  });

  afterAll(async () => {
    if (!env) return;
    await env.cli(['vm', 'destroy', name]);
    await env.cleanup();
  });

  it('builds, boots to the login prompt, and the guest is what was asked for', async () => {
    const r = await env.cli(
      ['vm', 'build', name, '--bundle', bundle, '--memory', '768M', '--disk', '3G', '--swap', '256M', '--net', 'user', '--wait', '--root-password-file', join(env.dir, 'pw'), '--json'],
      { timeoutMs: 600_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const done = events.filter((e) => e.event === 'step.done').map((e) => e.step);
    expect(done).toEqual([
      'inventory.reserve', 'disk.create', 'disk.attach', 'disk.format', 'root.mount', 'bundle.extract', 'guest.configure',
      'boot.install', 'root.release', 'domain.define', 'domain.start', 'boot.wait', 'inventory.commit',
    ]);
    const result = events.at(-1)?.result as { loginLine: string; bootSeconds: number; state: string };
    expect(result.loginLine).toBe(`${name} login:`);
    expect(result.bootSeconds).toBeGreaterThan(0);
    expect(result.state).toBe('running');
    // the password never shows up in output
    expect(r.stdout).not.toContain(password);

    const show = await env.cli(['vm', 'show', name, '--json']);
    expect(show.exitCode).toBe(0);
    const v = JSON.parse(show.stdout) as { state: string; status: string; timings: unknown[] };
    expect(v.state).toBe('running');
    expect(v.status).toBe('running');
    expect(v.timings).toHaveLength(13);

    // The console is a pty (what `virsh console` uses); libvirt says which.
    const pty = (await execa('virsh', ['-q', '-c', env.config.libvirt.uri, 'ttyconsole', name])).stdout.trim();
    expect(pty).toMatch(/^\/dev\/pts\/\d+$/);
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
      expect(await con.run('findmnt -no FSTYPE /')).toBe('ext4');
      expect(await con.run('grep -c . /etc/machine-id')).toBe('1'); // regenerated at first boot
      expect(await con.run('cat /proc/cmdline')).toContain('console=ttyS0');
      expect(await con.run('ip -br link show eth0')).toMatch(/^eth0\s+UP/);
    } finally {
      con.close();
    }
  });

  it('vm list shows it, and destroy leaves nothing behind', async () => {
    const list = await env.cli(['vm', 'list', '--json']);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((v) => v.name)).toContain(name);

    const d = await env.cli(['vm', 'destroy', name]);
    expect(d.exitCode).toBe(0);
    expect(await leftovers(env, name)).toEqual([]);

    const again = await env.cli(['vm', 'destroy', name]);
    expect(again.exitCode).toBe(4);
    expect(again.stderr).toContain(`no VM named '${name}'`);
  });
});
