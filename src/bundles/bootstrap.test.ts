import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cleanTemplateRoot } from './bootstrap.js';

let tmp: string;
let root: string;
const inRoot = (p: string) => path.join(root, p);

async function put(guestPath: string, content = 'x', mode = 0o644): Promise<void> {
  await fsp.mkdir(path.dirname(inRoot(guestPath)), { recursive: true });
  await fsp.writeFile(inRoot(guestPath), content);
  await fsp.chmod(inRoot(guestPath), mode);
}

async function names(guestDir: string): Promise<string[]> {
  return (await fsp.readdir(inRoot(guestDir))).sort();
}

/** What debootstrap leaves behind that cleanTemplateRoot must deal with. */
async function fakeDebootstrappedRoot(): Promise<void> {
  await put('/etc/machine-id', '0123456789abcdef0123456789abcdef\n');
  await fsp.mkdir(inRoot('var/lib/dbus'), { recursive: true });
  await fsp.symlink('/etc/machine-id', inRoot('var/lib/dbus/machine-id'));
  await put('/var/cache/apt/pkgcache.bin');
  await put('/var/cache/apt/srcpkgcache.bin');
  await put('/var/cache/apt/archives/openssh-server_1_amd64.deb');
  await put('/var/cache/apt/archives/lock', '', 0o640);
  await fsp.mkdir(inRoot('var/cache/apt/archives/partial'));
  await put('/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease');
  await put('/var/lib/apt/lists/lock', '', 0o640);
  await fsp.mkdir(inRoot('var/lib/apt/lists/partial'));
  await fsp.mkdir(inRoot('var/lib/apt/lists/auxfiles'));
  await put('/etc/hostname', 'buildhost\n', 0o600);
  await put('/etc/resolv.conf', 'nameserver 10.0.0.1\n');
  await put('/etc/ssh/ssh_host_ed25519_key', 'secret', 0o600);
  await put('/etc/ssh/ssh_host_ed25519_key.pub');
  await put('/etc/ssh/sshd_config');
  await put('/etc/udev/rules.d/70-persistent-net.rules');
}

beforeEach(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'vmforge-clean-'));
  root = path.join(tmp, 'root');
  await fsp.mkdir(root);
});

afterEach(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

describe('cleanTemplateRoot', () => {
  it('empties identity and caches, keeps directories and the rest', async () => {
    await fakeDebootstrappedRoot();
    await put('/etc/fstab', 'UUID=x / ext4 defaults 0 1\n');
    await cleanTemplateRoot(root);

    expect(await fsp.readFile(inRoot('etc/machine-id'), 'utf8')).toBe('');
    expect((await fsp.stat(inRoot('etc/machine-id'))).mode & 0o7777).toBe(0o444);
    expect(await names('var/lib/dbus')).toEqual([]);
    expect(await names('var/cache/apt')).toEqual(['archives']);
    expect(await names('var/cache/apt/archives')).toEqual(['lock', 'partial']);
    expect(await names('var/lib/apt/lists')).toEqual(['auxfiles', 'lock', 'partial']);
    expect(await fsp.readFile(inRoot('etc/hostname'), 'utf8')).toBe('localhost\n');
    expect((await fsp.stat(inRoot('etc/hostname'))).mode & 0o7777).toBe(0o644);
    expect(await fsp.readFile(inRoot('etc/resolv.conf'), 'utf8')).toBe('');
    expect(await names('etc/ssh')).toEqual(['sshd_config']);
    expect(await names('etc/udev/rules.d')).toEqual([]);
    expect(await fsp.readFile(inRoot('etc/fstab'), 'utf8')).toBe('UUID=x / ext4 defaults 0 1\n');
    // Only the machine-id link went, not what it pointed at.
    expect((await fsp.lstat(inRoot('etc/machine-id'))).isFile()).toBe(true);
  });

  it('tolerates a minimal root without the optional places', async () => {
    await put('/etc/hostname', 'buildhost\n');
    await put('/etc/resolv.conf', '');
    await put('/etc/machine-id', '');
    await put('/etc/fstab', '');
    await fsp.mkdir(inRoot('etc/ssh'));
    await cleanTemplateRoot(root);
    expect(await names('etc')).toEqual(['fstab', 'hostname', 'machine-id', 'resolv.conf', 'ssh']);
  });

  // The placeholder fstab for a root without one is a new file given to root:root, so its test needs root:
  // test/integration/clean-template-root.test.ts.
});
