/**
 * Direct kernel boot end to end: `vm build --boot kernel` copies the guest's kernel and initrd to host storage,
 * QEMU boots them (no GRUB in the disk) to the login prompt, `vm refresh-kernel` copies them again from the
 * guest's disk while it runs, and destroy removes the copies with the rest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, requireRoot, uniqueName, type TestEnv } from '../harness/env.js';

requireRoot();

describe('vm build --boot kernel', () => {
  let env: TestEnv;
  let bundle: string;
  const name = uniqueName('vmfkb');

  beforeAll(async () => {
    await ensureLibvirt();
    bundle = await ensureTemplate();
    env = await makeTestEnv();
  });

  afterAll(async () => {
    if (!env) return;
    await env.cli(['vm', 'destroy', name]);
    await env.cleanup();
  });

  it('boots the copied kernel to the login prompt, with no GRUB in the disk', async () => {
    const r = await env.cli(['vm', 'build', name, '--bundle', bundle, '--memory', '768M', '--disk', '3G', '--swap', '256M', '--net', 'none', '--boot', 'kernel', '--wait', '--json'], {
      timeoutMs: 900_000,
    });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const done = events.filter((e) => e.event === 'step.done').map((e) => e.step);
    expect(done).toContain('boot.kernel');
    expect(done).not.toContain('boot.install');
    expect((events.at(-1)?.result as { loginLine: string }).loginLine).toBe(`${name} login:`);

    const kernel = join(env.config.storage.dir, `${name}.vmlinuz`);
    const initrd = join(env.config.storage.dir, `${name}.initrd`);
    expect((await stat(kernel)).mode & 0o777).toBe(0o644);
    expect((await stat(initrd)).size).toBeGreaterThan(1024 * 1024);
    const xml = (await execa('virsh', ['-c', env.config.libvirt.uri, 'dumpxml', name])).stdout;
    expect(xml).toContain(`<kernel>${kernel}</kernel>`);
    expect(xml).toContain(`<initrd>${initrd}</initrd>`);
    expect(xml).toMatch(/<cmdline>root=UUID=[0-9a-f-]{36} ro console=tty0 console=ttyS0,115200n8/);
    // No boot code in the disk: the MBR's first bytes are zero (GRUB's boot.img would start with a jump).
    const mbr = Buffer.alloc(440);
    const fh = await open(join(env.config.storage.dir, `${name}.img`), 'r');
    await fh.read(mbr, 0, 440, 0);
    await fh.close();
    expect(mbr.every((b) => b === 0)).toBe(true);
  });

  it('refresh-kernel copies the newest kernel again from the running guest', async () => {
    const kernel = join(env.config.storage.dir, `${name}.vmlinuz`);
    const before = await readFile(kernel);
    const r = await env.cli(['vm', 'refresh-kernel', name, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as { result: { kernelVersion: string; restartNeeded: boolean; kernel: { to: string } } };
    expect(res.result.kernelVersion).toMatch(/^\d+\.\d+/);
    expect(res.result.kernel.to).toBe(kernel);
    expect(res.result.restartNeeded).toBe(true);
    expect((await readFile(kernel)).equals(before)).toBe(true);
    // Nothing of the refresh stays attached or mounted.
    expect(await leftovers(env, `${name}.refresh`)).toEqual([]);
    const loops = JSON.parse((await execa('losetup', ['-J', '-l'])).stdout || '{"loopdevices":[]}') as { loopdevices: { 'back-file': string | null }[] };
    expect(loops.loopdevices.filter((l) => l['back-file']?.includes(name))).toEqual([]);
  });

  it('refuses a VM that boots with GRUB, and destroy removes the kernel copies', async () => {
    const d = await env.cli(['vm', 'destroy', name]);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(existsSync(join(env.config.storage.dir, `${name}.vmlinuz`))).toBe(false);
    expect(existsSync(join(env.config.storage.dir, `${name}.initrd`))).toBe(false);
    expect(await leftovers(env, name)).toEqual([]);
    const other = uniqueName('vmfkb');
    expect((await env.cli(['vm', 'build', other, '--bundle', bundle, '--memory', '256M', '--disk', '2G', '--net', 'none', '--no-start'])).exitCode).toBe(0);
    const g = await env.cli(['vm', 'refresh-kernel', other]);
    expect(g.exitCode).toBe(2);
    expect(g.stderr).toContain('boots with GRUB from its own disk');
    expect((await env.cli(['vm', 'destroy', other])).exitCode).toBe(0);
  });
});
