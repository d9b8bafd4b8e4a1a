/**
 * A fresh identity for every VM (issue #5), through the real CLI with --no-start, cold and warm: the guest's
 * /etc/ssh holds host keys made on the host whose fingerprints `vm show --json` reports (and no private key
 * anywhere in vmforge's output), `vm known-hosts` prints lines ssh-keygen reads, machine-id is empty, the
 * template's NIC rules and D-Bus machine id are gone, the time zone is set. --cloud-init: the NoCloud seed
 * image exists next to the disk with meta-data, user-data and network-config, the domain XML has it as a
 * CD-ROM, and destroy (or a failed build's undo) removes it.
 */
import { execa } from 'execa';
import { lstat, mkdir, readdir, readFile, readlink, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { layoutFromMbr } from '../../src/core/disk/mbr-read.js';
import { rootPartition } from '../../src/core/disk/layout.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { readAt } from '../../src/exec/tools/disk-image.js';
import { attachLoop, detachLoop } from '../../src/exec/tools/loop.js';
import { mount, umount } from '../../src/exec/tools/mount.js';
import { exportQcow2AsRaw } from '../../src/exec/tools/qsd-fuse.js';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, requireRoot, uniqueName, type TestEnv } from '../harness/env.js';

requireRoot();

const runner = new HostProcessRunner();
let bundle: string;
const base = ['--memory', '256M', '--disk', '2G', '--swap', '128M', '--no-start'];

interface ShownKey {
  type: string;
  publicKey: string;
  fingerprint: string;
}

beforeAll(async () => {
  await ensureLibvirt();
  bundle = await ensureTemplate();
});

/** Partition 1 of a raw image (or of a raw FUSE view of a qcow2 overlay), mounted read-only, handed to fn. */
async function withRawRoot<T>(raw: string, work: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const st = await stat(raw);
  const root = rootPartition(layoutFromMbr(await readAt(raw, 0, 512), st.size));
  const loop = await attachLoop(runner, { file: raw, offsetBytes: root.offsetBytes, sizeBytes: root.sizeBytes, readOnly: true });
  try {
    const dir = join(work, 'mnt');
    await mkdir(dir, { recursive: true });
    const m = await mount(runner, { device: loop.device, target: dir, options: ['ro', 'noload'] });
    try {
      return await fn(dir);
    } finally {
      await umount(runner, m);
      await rmdir(dir);
    }
  } finally {
    await detachLoop(runner, loop);
  }
}

async function withGuestRoot<T>(env: TestEnv, disk: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const work = join(env.dir, 'inspect');
  await mkdir(work, { recursive: true });
  if (!disk.endsWith('.qcow2')) return withRawRoot(disk, work, fn);
  const exp = await exportQcow2AsRaw(runner, { qcow2Path: disk, exportPath: join(work, 'disk.raw'), readOnly: true });
  try {
    return await withRawRoot(exp.rawPath, work, fn);
  } finally {
    await exp.stop();
  }
}

async function show(env: TestEnv, name: string): Promise<{ raw: string; v: { uuid: string; diskPath: string; sshHostKeys: ShownKey[]; cloudInitSeed: string | null } }> {
  const r = await env.cli(['vm', 'show', name, '--json']);
  expect(r.exitCode, r.stderr).toBe(0);
  return { raw: r.stdout, v: JSON.parse(r.stdout) };
}

/** `ssh-keygen -l -f FILE` lines as [bits, fingerprint, ...]. */
async function keygenList(file: string): Promise<string[][]> {
  const { stdout } = await execa('ssh-keygen', ['-l', '-f', file]);
  return stdout.trim().split('\n').map((l) => l.split(/\s+/));
}

/** The guest's /etc/ssh has exactly the stored keys: fingerprints, pairs that match, modes; nothing of the template's. */
async function checkGuestKeys(root: string, keys: ShownKey[]): Promise<void> {
  expect(keys.map((k) => k.type).sort()).toEqual(['ecdsa', 'ed25519', 'rsa']);
  const sshDir = join(root, 'etc/ssh');
  const hostFiles = (await readdir(sshDir)).filter((n) => n.startsWith('ssh_host_')).sort();
  expect(hostFiles).toEqual(keys.flatMap((k) => [`ssh_host_${k.type}_key`, `ssh_host_${k.type}_key.pub`]).sort());
  for (const k of keys) {
    const priv = join(sshDir, `ssh_host_${k.type}_key`);
    expect((await stat(priv)).mode & 0o777, priv).toBe(0o600);
    expect((await stat(`${priv}.pub`)).mode & 0o777).toBe(0o644);
    expect((await keygenList(`${priv}.pub`))[0]?.[1]).toBe(k.fingerprint);
    expect((await readFile(`${priv}.pub`, 'utf8')).trim()).toBe(k.publicKey);
    // The private half belongs to the public one.
    const derived = (await execa('ssh-keygen', ['-y', '-f', priv])).stdout.trim().split(/\s+/).slice(0, 2).join(' ');
    expect(derived).toBe(k.publicKey.split(/\s+/).slice(0, 2).join(' '));
  }
  // Nothing left to make at first boot: Debian's key unit is not installed.
  expect(await lstat(join(root, 'etc/systemd/system/vmforge-ssh-hostkeys.service')).catch(() => null)).toBeNull();
}

async function checkFreshIdentity(root: string): Promise<void> {
  expect(await readFile(join(root, 'etc/machine-id'), 'utf8')).toBe('');
  expect(await lstat(join(root, 'var/lib/dbus/machine-id')).catch(() => null)).toBeNull();
  expect(await lstat(join(root, 'etc/udev/rules.d/70-persistent-net.rules')).catch(() => null)).toBeNull();
}

async function knownHosts(env: TestEnv, name: string, keys: ShownKey[]): Promise<string> {
  const r = await env.cli(['vm', 'known-hosts', name]);
  expect(r.exitCode, r.stderr).toBe(0);
  const file = join(env.dir, `${name}.known_hosts`);
  await writeFile(file, r.stdout);
  const listed = await keygenList(file);
  expect(listed.map((l) => l[1]).sort()).toEqual(keys.map((k) => k.fingerprint).sort());
  // ssh finds the VM by its name in that file.
  expect((await execa('ssh-keygen', ['-F', name, '-f', file])).stdout).toContain(name);
  return r.stdout;
}

describe('cold build with --cloud-init, --ssh-key, static address, time zone', () => {
  let env: TestEnv;
  const name = uniqueName('wtid-cold');
  beforeAll(async () => {
    env = await makeTestEnv();
  });
  afterAll(async () => {
    await env.cli(['vm', 'destroy', name]);
    expect(await leftovers(env, name)).toEqual([]);
    await env.cleanup();
  });

  it('gives the guest its own host keys, on record, and a seed CD-ROM; destroy removes the seed', async () => {
    const pub = join(env.dir, 'admin.pub');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'admin@wtid', '-f', join(env.dir, 'admin')]);
    const adminKey = (await readFile(pub, 'utf8')).trim();
    const r = await env.cli([
      'vm', 'build', name, '--bundle', bundle, ...base, '--net', 'user', '--cloud-init', '--ssh-key', pub,
      '--ip', '10.77.0.9/24', '--gateway', '10.77.0.1', '--dns', '10.77.0.53', '--timezone', 'Europe/Berlin', '--json',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain('PRIVATE KEY');

    const { raw, v } = await show(env, name);
    expect(raw).not.toMatch(/PRIVATE KEY|privateKey/);
    const text = await env.cli(['vm', 'show', name]);
    for (const k of v.sshHostKeys) expect(text.stdout).toContain(k.fingerprint);

    await withGuestRoot(env, v.diskPath, async (root) => {
      await checkGuestKeys(root, v.sshHostKeys);
      await checkFreshIdentity(root);
      expect(await readlink(join(root, 'etc/localtime'))).toMatch(/zoneinfo\/Europe\/Berlin$/);
      expect((await readFile(join(root, 'root/.ssh/authorized_keys'), 'utf8'))).toContain(adminKey);
    });

    const kh = await knownHosts(env, name, v.sshHostKeys);
    expect(kh.split('\n')[0]).toMatch(new RegExp(`^${name},10\\.77\\.0\\.9 ssh-`));

    // The seed: next to the disk, label cidata, the three files, the VM's uuid and keys in them.
    const seed = v.cloudInitSeed as string;
    expect(seed).toBe(join(env.config.storage.dir, `${name}.cidata.iso`));
    expect((await execa('blkid', ['-o', 'export', seed])).stdout).toMatch(/^LABEL=cidata$/m);
    const out = join(env.dir, 'seed');
    await execa('xorriso', ['-osirrox', 'on', '-indev', seed, '-extract', '/', out]);
    expect((await readdir(out)).sort()).toEqual(['meta-data', 'network-config', 'user-data']);
    expect(await readFile(join(out, 'meta-data'), 'utf8')).toContain(`instance-id: "${v.uuid}"`);
    const userData = await readFile(join(out, 'user-data'), 'utf8');
    expect(userData).toContain(JSON.stringify(adminKey));
    expect(userData).toContain('ssh_deletekeys: false');
    expect(await readFile(join(out, 'network-config'), 'utf8')).toContain('"10.77.0.9/24"');
    await rm(out, { recursive: true, force: true });

    const xml = (await execa('virsh', ['-q', '-c', env.config.libvirt.uri, 'dumpxml', '--inactive', name])).stdout;
    expect(xml).toMatch(new RegExp(`<disk type='file' device='cdrom'>[\\s\\S]*?<source file='${seed.replace(/\./g, '\\.')}'/>[\\s\\S]*?<readonly/>`));

    // Nor in the log vmforge writes (it names the fingerprints, public data).
    const log = await readFile(join(env.config.stateDir, 'log/vmforge.log'), 'utf8');
    expect(log).toContain(v.sshHostKeys[0]?.fingerprint);
    expect(log).not.toContain('PRIVATE KEY');

    const d = await env.cli(['vm', 'destroy', name]);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(await stat(seed).catch(() => null)).toBeNull();
    expect(await leftovers(env, name)).toEqual([]);
  });

  it('--no-host-keys: no keys on record, the guest makes its own', async () => {
    const other = uniqueName('wtid-nokeys');
    try {
      const r = await env.cli(['vm', 'build', other, '--bundle', bundle, ...base, '--net', 'none', '--no-host-keys']);
      expect(r.exitCode, r.stderr).toBe(0);
      const { v } = await show(env, other);
      expect(v.sshHostKeys).toEqual([]);
      expect((await env.cli(['vm', 'known-hosts', other])).exitCode).not.toBe(0);
      await withGuestRoot(env, v.diskPath, async (root) => {
        expect((await readdir(join(root, 'etc/ssh'))).filter((n) => n.startsWith('ssh_host_'))).toEqual([]);
        expect(await lstat(join(root, 'etc/systemd/system/vmforge-ssh-hostkeys.service'))).toBeTruthy();
        await checkFreshIdentity(root);
      });
    } finally {
      await env.cli(['vm', 'destroy', other]);
    }
    expect(await leftovers(env, other)).toEqual([]);
  });

  it('a failure around the seed step leaves nothing', async () => {
    const report: string[] = [];
    for (const fault of ['before:cloudinit.seed', 'after:cloudinit.seed', 'after:domain.define']) {
      const n = uniqueName('wtid-fault');
      const r = await env.cli(['vm', 'build', n, '--bundle', bundle, ...base, '--net', 'user', '--cloud-init'], { env: { VMFORGE_FAULT: fault } });
      expect(r.exitCode, `${fault}: ${r.stderr}`).not.toBe(0);
      expect(r.stderr).toContain(`injected fault ${fault.replace(':', " step '")}'`);
      expect(r.stderr).not.toContain('undo also failed');
      const left = await leftovers(env, n);
      if (left.length) report.push(`${fault}: ${left.join(', ')}`);
    }
    expect(report).toEqual([]);
  });
});

describe('warm build (qcow2 clone of the golden image)', () => {
  let env: TestEnv;
  const names = [uniqueName('wtid-warm'), uniqueName('wtid-warm')];
  beforeAll(async () => {
    env = await makeTestEnv('storage:\n  clone: qcow2\n');
  });
  afterAll(async () => {
    for (const n of names) await env.cli(['vm', 'destroy', n]);
    for (const n of names) expect(await leftovers(env, n)).toEqual([]);
    await env.cleanup();
  });

  it('gives every clone its own host keys, though they share one golden image', async () => {
    const seen: ShownKey[][] = [];
    for (const n of names) {
      const r = await env.cli(['vm', 'build', n, '--bundle', bundle, ...base, '--net', 'none']);
      expect(r.exitCode, r.stderr).toBe(0);
      const { v } = await show(env, n);
      expect(v.diskPath.endsWith('.qcow2')).toBe(true);
      await withGuestRoot(env, v.diskPath, async (root) => {
        await checkGuestKeys(root, v.sshHostKeys);
        await checkFreshIdentity(root);
      });
      await knownHosts(env, n, v.sshHostKeys);
      seen.push(v.sshHostKeys);
    }
    const fps = seen.flat().map((k) => k.fingerprint);
    expect(new Set(fps).size).toBe(fps.length);
  });
});
