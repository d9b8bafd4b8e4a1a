import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { GuestRoot } from './guest-root.js';
import { VmforgeError } from '../../errors.js';

let tmp: string;
let root: string;
let hostDir: string;
let guest: GuestRoot;
const me = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

beforeEach(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'vmforge-guestroot-'));
  root = path.join(tmp, 'root');
  hostDir = path.join(tmp, 'host');
  await fsp.mkdir(path.join(root, 'etc'), { recursive: true });
  await fsp.mkdir(hostDir);
  // Own everything we create as the test user so the suite runs without root.
  guest = new GuestRoot(root, me);
});

afterEach(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

const inRoot = (p: string) => path.join(root, p);

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  await expect(p).rejects.toBeInstanceOf(VmforgeError);
  await expect(p).rejects.toMatchObject({ code });
}

/** A host file we must never touch: content, inode and mtime are compared afterwards. */
async function hostFile(name: string, content = 'HOST DATA\n') {
  const p = path.join(hostDir, name);
  await fsp.writeFile(p, content, { mode: 0o600 });
  const before = await fsp.stat(p);
  return {
    path: p,
    async assertUntouched() {
      const after = await fsp.stat(p);
      expect(await fsp.readFile(p, 'utf8')).toBe(content);
      expect(after.ino).toBe(before.ino);
      expect(after.mtimeMs).toBe(before.mtimeMs);
      expect(after.mode).toBe(before.mode);
    },
  };
}

async function leftovers(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => n.startsWith('.vmforge-'));
}

describe('GuestRoot basics', () => {
  it('reads null for missing files and missing parents', async () => {
    expect(await guest.readText('/etc/hostname')).toBeNull();
    expect(await guest.readText('/nope/deeper/file')).toBeNull();
    expect(await guest.exists('/etc/hostname')).toBe(false);
    expect(await guest.exists('/etc')).toBe(true);
  });

  it('writes a new file with 0644 and the default owner, atomically', async () => {
    await guest.writeText('/etc/hostname', 'vm1\n');
    expect(await guest.readText('/etc/hostname')).toBe('vm1\n');
    const st = await fsp.stat(inRoot('etc/hostname'));
    expect(st.mode & 0o7777).toBe(0o644);
    expect([st.uid, st.gid]).toEqual([me.uid, me.gid]);
    expect(await leftovers(inRoot('etc'))).toEqual([]);
  });

  it('preserves mode and owner of the file it replaces; an explicit mode wins', async () => {
    await fsp.writeFile(inRoot('etc/shadow'), 'root:*:1::::::\n', { mode: 0o640 });
    await fsp.chmod(inRoot('etc/shadow'), 0o640);
    const before = await fsp.stat(inRoot('etc/shadow'));
    await guest.writeText('/etc/shadow', 'root:$y$x:1::::::\n');
    const after = await fsp.stat(inRoot('etc/shadow'));
    expect(after.mode & 0o7777).toBe(0o640);
    expect([after.uid, after.gid]).toEqual([before.uid, before.gid]);
    expect(after.ino).not.toBe(before.ino); // replaced by rename, not rewritten in place
    await guest.writeText('/etc/shadow', 'x\n', 0o600);
    expect((await fsp.stat(inRoot('etc/shadow'))).mode & 0o7777).toBe(0o600);
  });

  it('keeps set-id bits when asked for them', async () => {
    await guest.writeText('/etc/tool', '#!/bin/sh\n', 0o4755);
    expect((await fsp.stat(inRoot('etc/tool'))).mode & 0o7777).toBe(0o4755);
  });

  it('refuses to write when the parent directory is missing', async () => {
    await expectCode(guest.writeText('/etc/default/grub', 'x'), 'NOT_FOUND');
    await expect(fsp.stat(inRoot('etc/default'))).rejects.toThrow();
  });

  it('mkdirp creates missing directories with the given mode and accepts existing ones', async () => {
    await guest.mkdirp('/etc/systemd/system/getty.target.wants', 0o750);
    expect((await fsp.stat(inRoot('etc/systemd/system/getty.target.wants'))).mode & 0o7777).toBe(0o750);
    await guest.mkdirp('/etc/systemd/system/getty.target.wants');
    await guest.mkdirp('/etc');
    expect((await fsp.stat(inRoot('etc'))).isDirectory()).toBe(true);
  });

  it('mkdirp refuses when a file is in the way', async () => {
    await fsp.writeFile(inRoot('etc/default'), 'file');
    await expectCode(guest.mkdirp('/etc/default'), 'INVALID_INPUT');
    await expectCode(guest.mkdirp('/etc/default/grub.d'), 'INVALID_INPUT');
  });

  it('remove is idempotent and refuses directories', async () => {
    await fsp.writeFile(inRoot('etc/machine-id'), 'abc\n');
    await guest.remove('/etc/machine-id');
    await guest.remove('/etc/machine-id');
    await guest.remove('/var/lib/dbus/machine-id');
    expect(await guest.exists('/etc/machine-id')).toBe(false);
    await expectCode(guest.remove('/etc'), 'INVALID_INPUT');
    await expectCode(guest.remove('/'), 'INVALID_INPUT');
  });

  it('symlink stores the target verbatim inside the root, replaces and is idempotent', async () => {
    await guest.mkdirp('/etc/systemd/system/getty.target.wants');
    const link = '/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service';
    await guest.symlink('/lib/systemd/system/serial-getty@.service', link);
    expect(await fsp.readlink(inRoot(link))).toBe('/lib/systemd/system/serial-getty@.service');
    expect(await guest.readLink(link)).toBe('/lib/systemd/system/serial-getty@.service');
    const ino = (await fsp.lstat(inRoot(link))).ino;
    await guest.symlink('/lib/systemd/system/serial-getty@.service', link);
    expect((await fsp.lstat(inRoot(link))).ino).toBe(ino);
    await guest.symlink('../other', link);
    expect(await fsp.readlink(inRoot(link))).toBe('../other');
    expect(await leftovers(inRoot('etc/systemd/system/getty.target.wants'))).toEqual([]);
    await expectCode(guest.symlink('', link), 'INVALID_INPUT');
  });

  it('lists directories sorted, [] when missing', async () => {
    await fsp.writeFile(inRoot('etc/b'), '');
    await fsp.writeFile(inRoot('etc/a'), '');
    expect(await guest.list('/etc')).toEqual(['a', 'b']);
    expect(await guest.list('/etc/udev/rules.d')).toEqual([]);
    await expectCode(guest.list('/etc/a'), 'INVALID_INPUT');
  });

  it('applyEdits runs every kind in order', async () => {
    await fsp.writeFile(inRoot('etc/old'), 'x');
    const touched = await guest.applyEdits([
      { kind: 'mkdir', path: '/etc/network' },
      { kind: 'write', path: '/etc/network/interfaces', content: 'auto lo\n' },
      { kind: 'delete', path: '/etc/old' },
      { kind: 'symlink', path: '/etc/network/link', target: 'interfaces' },
    ]);
    expect(touched).toEqual(['/etc/network', '/etc/network/interfaces', '/etc/old', '/etc/network/link']);
    expect(await guest.readText('/etc/network/link')).toBe('auto lo\n');
    expect(await guest.exists('/etc/old')).toBe(false);
  });

  it('snapshot reads files, listings and links', async () => {
    await fsp.writeFile(inRoot('etc/hosts'), '127.0.0.1 localhost\n');
    await fsp.symlink('../run/systemd/resolve/stub-resolv.conf', inRoot('etc/resolv.conf'));
    const snap = await guest.snapshot({ files: ['/etc/hosts', '/etc/nope'], dirs: ['/etc', '/etc/ssh'], links: ['/etc/resolv.conf', '/etc/hosts'] });
    expect(snap.files).toEqual({ '/etc/hosts': '127.0.0.1 localhost\n', '/etc/nope': null });
    expect(snap.dirs).toEqual({ '/etc': ['hosts', 'resolv.conf'], '/etc/ssh': [] });
    expect(snap.links).toEqual({ '/etc/resolv.conf': '../run/systemd/resolve/stub-resolv.conf', '/etc/hosts': null });
  });

  it('refuses non-UTF-8 text rather than corrupting it', async () => {
    await fsp.writeFile(inRoot('etc/latin1'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    await expectCode(guest.readText('/etc/latin1'), 'INVALID_INPUT');
  });

  it('writeFile writes bytes verbatim, with the same mode and owner rules as writeText', async () => {
    const bytes = Uint8Array.from([0x7f, 0x45, 0x4c, 0x46, 0x00, 0xff, 0xfe, 0xe9, 0x0a]);
    await fsp.mkdir(inRoot('boot/grub/i386-pc'), { recursive: true });
    await guest.writeFile('/boot/grub/i386-pc/normal.mod', bytes);
    expect(new Uint8Array(await fsp.readFile(inRoot('boot/grub/i386-pc/normal.mod')))).toEqual(bytes);
    const st = await fsp.stat(inRoot('boot/grub/i386-pc/normal.mod'));
    expect(st.mode & 0o7777).toBe(0o644);
    expect([st.uid, st.gid]).toEqual([me.uid, me.gid]);
    await fsp.chmod(inRoot('boot/grub/i386-pc/normal.mod'), 0o600);
    await guest.writeFile('/boot/grub/i386-pc/normal.mod', Buffer.from('second'));
    expect(await fsp.readFile(inRoot('boot/grub/i386-pc/normal.mod'), 'utf8')).toBe('second');
    expect((await fsp.stat(inRoot('boot/grub/i386-pc/normal.mod'))).mode & 0o7777).toBe(0o600);
    await guest.writeFile('/boot/grub/i386-pc/normal.mod', new Uint8Array(0), 0o444);
    expect((await fsp.stat(inRoot('boot/grub/i386-pc/normal.mod'))).mode & 0o7777).toBe(0o444);
    expect(await leftovers(inRoot('boot/grub/i386-pc'))).toEqual([]);
    await expectCode(guest.writeFile('/boot/missing/x.mod', bytes), 'NOT_FOUND');
  });

  it('readHead reads at most maxBytes of any file, binary too; null for missing files and directories', async () => {
    await fsp.writeFile(inRoot('etc/bin'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0xff, 0x00]));
    expect(await guest.readHead('/etc/bin', 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    expect(await guest.readHead('/etc/bin', 64)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0xff, 0x00]));
    await fsp.writeFile(inRoot('etc/empty'), '');
    expect(await guest.readHead('/etc/empty', 64)).toEqual(Buffer.alloc(0));
    await fsp.symlink('bin', inRoot('etc/link'));
    expect(await guest.readHead('/etc/link', 2)).toEqual(Buffer.from([0x7f, 0x45]));
    expect(await guest.readHead('/etc/nope', 4)).toBeNull();
    expect(await guest.readHead('/etc/bin/below', 4)).toBeNull();
    expect(await guest.readHead('/etc', 4)).toBeNull();
    // Bigger than readText's limit is fine: only the head is read.
    const small = new GuestRoot(root, { ...me, maxReadBytes: 4 });
    expect(await small.readHead('/etc/bin', 6)).toHaveLength(6);
  });

  it('entryType tells files, directories, symlinks (not followed) and missing paths apart', async () => {
    await fsp.writeFile(inRoot('etc/file'), 'x');
    await fsp.symlink('file', inRoot('etc/link'));
    await fsp.symlink('nowhere', inRoot('etc/dangling'));
    expect(await guest.entryType('/etc/file')).toBe('file');
    expect(await guest.entryType('/etc')).toBe('directory');
    expect(await guest.entryType('/')).toBe('directory');
    expect(await guest.entryType('/etc/link')).toBe('symlink');
    expect(await guest.entryType('/etc/dangling')).toBe('symlink');
    expect(await guest.entryType('/etc/nope')).toBeNull();
    expect(await guest.entryType('/etc/file/below')).toBeNull();
    expect(await guest.entryType('/var/lib/x')).toBeNull();
  });

  it('refuses files above the read limit', async () => {
    const small = new GuestRoot(root, { ...me, maxReadBytes: 4 });
    await fsp.writeFile(inRoot('etc/big'), '123456');
    await expectCode(small.readText('/etc/big'), 'INVALID_INPUT');
  });

  it('reports a missing root as NOT_FOUND and a relative root as INVALID_INPUT', async () => {
    await expectCode(new GuestRoot(path.join(tmp, 'absent')).readText('/etc/hostname'), 'NOT_FOUND');
    await expectCode(new GuestRoot('relative/root').readText('/etc/hostname'), 'INVALID_INPUT');
  });
});

describe('GuestRoot caller paths', () => {
  it.each([
    ['etc/hostname', 'relative'],
    ['', 'empty'],
    ['/etc/../../../etc/passwd', 'dot-dot'],
    ['/..', 'dot-dot at the root'],
    ['/etc/host\0name', 'NUL byte'],
  ])('refuses %j (%s) with UNSAFE_PATH', async (p) => {
    await expectCode(guest.readText(p), 'UNSAFE_PATH');
    await expectCode(guest.writeText(p, 'x'), 'UNSAFE_PATH');
    await expectCode(guest.remove(p), 'UNSAFE_PATH');
  });

  it("accepts '.' and repeated slashes", async () => {
    await guest.writeText('//etc/./hostname', 'vm\n');
    expect(await fsp.readFile(inRoot('etc/hostname'), 'utf8')).toBe('vm\n');
  });

  it('refuses to write, remove or link the root itself', async () => {
    await expectCode(guest.writeText('/', 'x'), 'INVALID_INPUT');
    await expectCode(guest.symlink('x', '/'), 'INVALID_INPUT');
  });
});

describe('GuestRoot against hostile images', () => {
  it('/etc/hostname -> absolute host path: read is re-rooted, write replaces the link, host untouched', async () => {
    const host = await hostFile('hostname');
    await fsp.symlink(host.path, inRoot('etc/hostname'));

    // The same path inside the guest does not exist, so the guest sees no file at all.
    expect(await guest.readText('/etc/hostname')).toBeNull();
    // ...and when the guest does have that path, the guest's file is what is read.
    await fsp.mkdir(inRoot(hostDir), { recursive: true });
    await fsp.writeFile(inRoot(host.path), 'GUEST COPY\n');
    expect(await guest.readText('/etc/hostname')).toBe('GUEST COPY\n');

    await guest.writeText('/etc/hostname', 'vm1\n');
    await host.assertUntouched();
    const st = await fsp.lstat(inRoot('etc/hostname'));
    expect(st.isFile()).toBe(true);
    expect(st.mode & 0o7777).toBe(0o644); // a replaced symlink has no mode to keep
    expect(await fsp.readFile(inRoot('etc/hostname'), 'utf8')).toBe('vm1\n');
    expect(await fsp.readFile(inRoot(host.path), 'utf8')).toBe('GUEST COPY\n');
  });

  it('relative ../../.. chains never climb above the root', async () => {
    const host = await hostFile('secret');
    // root/etc/hostname -> ../usr/x -> ../../../../../host/secret: on the host that would reach tmp/host/secret.
    await fsp.mkdir(inRoot('usr'));
    await fsp.symlink('../usr/x', inRoot('etc/hostname'));
    await fsp.symlink('../../../../../../../../host/secret', inRoot('usr/x'));
    expect(path.resolve(inRoot('usr'), '../../host/secret')).toBe(host.path); // the attack is real on the host

    expect(await guest.readText('/etc/hostname')).toBeNull();
    await fsp.mkdir(inRoot('host'));
    await fsp.writeFile(inRoot('host/secret'), 'in guest\n');
    expect(await guest.readText('/etc/hostname')).toBe('in guest\n');

    await guest.writeText('/etc/hostname', 'vm1\n');
    await host.assertUntouched();
    expect((await fsp.lstat(inRoot('etc/hostname'))).isFile()).toBe(true);
    expect(await fsp.readFile(inRoot('host/secret'), 'utf8')).toBe('in guest\n');
  });

  it('a symlinked parent pointing out (/etc -> host dir) is re-rooted for reads, writes, mkdir and remove', async () => {
    const hostEtc = path.join(tmp, 'host-etc');
    await fsp.mkdir(hostEtc);
    await fsp.writeFile(path.join(hostEtc, 'hostname'), 'HOST\n');
    await fsp.writeFile(path.join(hostEtc, 'shadow'), 'HOST SHADOW\n');
    await fsp.rm(inRoot('etc'), { recursive: true });
    await fsp.symlink(hostEtc, inRoot('etc'));

    expect(await guest.readText('/etc/hostname')).toBeNull();
    await expectCode(guest.writeText('/etc/hostname', 'vm1\n'), 'NOT_FOUND');
    await guest.remove('/etc/shadow');
    expect(await guest.list('/etc')).toEqual([]);

    // Once the re-rooted directory exists inside the guest, everything lands there.
    await guest.mkdirp('/etc');
    expect((await fsp.stat(inRoot(hostEtc))).isDirectory()).toBe(true);
    await guest.writeText('/etc/hostname', 'vm1\n');
    await guest.mkdirp('/etc/network');
    await guest.symlink('/lib/systemd/system/x.service', '/etc/network/x');
    expect(await fsp.readFile(inRoot(path.join(hostEtc, 'hostname')), 'utf8')).toBe('vm1\n');

    expect(await fsp.readFile(path.join(hostEtc, 'hostname'), 'utf8')).toBe('HOST\n');
    expect(await fsp.readFile(path.join(hostEtc, 'shadow'), 'utf8')).toBe('HOST SHADOW\n');
    expect(await fsp.readdir(hostEtc)).toEqual(['hostname', 'shadow']);
  });

  it('a relative parent link climbing out (/etc -> ../../../host-etc) is clamped at the root', async () => {
    const hostEtc = path.join(tmp, 'host-etc');
    await fsp.mkdir(hostEtc);
    await fsp.writeFile(path.join(hostEtc, 'hostname'), 'HOST\n');
    await fsp.rm(inRoot('etc'), { recursive: true });
    await fsp.symlink('../../../../host-etc', inRoot('etc'));
    await fsp.mkdir(inRoot('host-etc'));

    await guest.writeText('/etc/hostname', 'vm1\n');
    expect(await fsp.readFile(inRoot('host-etc/hostname'), 'utf8')).toBe('vm1\n');
    expect(await fsp.readFile(path.join(hostEtc, 'hostname'), 'utf8')).toBe('HOST\n');
  });

  it('a directory link to / stays inside the root', async () => {
    await fsp.symlink('/', inRoot('etc/up'));
    await fsp.symlink('..', inRoot('etc/dotdot'));
    await guest.writeText('/etc/up/etc/up/etc/hostname', 'a\n');
    expect(await fsp.readFile(inRoot('etc/hostname'), 'utf8')).toBe('a\n');
    expect(await guest.readText('/etc/dotdot/etc/dotdot/etc/hostname')).toBe('a\n');
  });

  it('removing a link that points out removes only the link', async () => {
    const host = await hostFile('shadow');
    await fsp.symlink(host.path, inRoot('etc/shadow'));
    await guest.remove('/etc/shadow');
    await host.assertUntouched();
    await expect(fsp.lstat(inRoot('etc/shadow'))).rejects.toThrow();
  });

  it('mkdirp through a link pointing out creates the directories inside the root', async () => {
    const hostVar = path.join(tmp, 'host-var');
    await fsp.mkdir(hostVar);
    await fsp.symlink(hostVar, inRoot('var'));
    await guest.mkdirp('/var/lib/dbus');
    expect(await fsp.readdir(hostVar)).toEqual([]);
    expect((await fsp.stat(inRoot(path.join(hostVar, 'lib/dbus')))).isDirectory()).toBe(true);
  });

  it('symlink() at a path whose parent links out creates the link inside the root', async () => {
    const hostWants = path.join(tmp, 'host-wants');
    await fsp.mkdir(hostWants);
    await fsp.mkdir(inRoot('etc/systemd/system'), { recursive: true });
    await fsp.symlink(hostWants, inRoot('etc/systemd/system/getty.target.wants'));
    await expectCode(guest.symlink('/lib/x', '/etc/systemd/system/getty.target.wants/x'), 'NOT_FOUND');
    expect(await fsp.readdir(hostWants)).toEqual([]);
  });

  it('symlink loops end with UNSAFE_PATH', async () => {
    await fsp.symlink('b', inRoot('etc/a'));
    await fsp.symlink('a', inRoot('etc/b'));
    await expectCode(guest.readText('/etc/a'), 'UNSAFE_PATH');
    await expectCode(guest.writeText('/etc/a/x', 'x'), 'UNSAFE_PATH');
    // The last component is not followed for writes, so replacing the looping link itself is fine.
    await guest.writeText('/etc/a', 'fixed\n');
    expect(await guest.readText('/etc/b')).toBe('fixed\n');
  });

  it('refuses to read or replace special files', async () => {
    // A socket stands in for FIFOs and device nodes, which need mknod (root).
    const sockPath = inRoot('etc/sock');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(sockPath, resolve));
    try {
      await expectCode(guest.readText('/etc/sock'), 'UNSAFE_PATH');
      await expectCode(guest.writeText('/etc/sock', 'x'), 'UNSAFE_PATH');
      await fsp.symlink('/etc/sock', inRoot('etc/link-to-sock'));
      await expectCode(guest.readText('/etc/link-to-sock'), 'UNSAFE_PATH');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('writeFile replaces a link pointing out; readHead and entryType through links are re-rooted', async () => {
    const host = await hostFile('core.mod', 'HOST MODULE\n');
    await fsp.mkdir(inRoot('boot/grub/i386-pc'), { recursive: true });
    await fsp.symlink(host.path, inRoot('boot/grub/i386-pc/core.mod'));
    expect(await guest.readHead('/boot/grub/i386-pc/core.mod', 64)).toBeNull();
    expect(await guest.entryType('/boot/grub/i386-pc/core.mod')).toBe('symlink');
    await guest.writeFile('/boot/grub/i386-pc/core.mod', Uint8Array.from([1, 2, 3]));
    await host.assertUntouched();
    expect((await fsp.lstat(inRoot('boot/grub/i386-pc/core.mod'))).isFile()).toBe(true);

    // /boot -> host dir: the guest's copy of that path is what is seen and written.
    const hostBoot = path.join(tmp, 'host-boot');
    await fsp.mkdir(hostBoot);
    await fsp.writeFile(path.join(hostBoot, 'vmlinuz-1'), 'HOST KERNEL');
    await fsp.rm(inRoot('boot'), { recursive: true });
    await fsp.symlink(hostBoot, inRoot('boot'));
    expect(await guest.readHead('/boot/vmlinuz-1', 64)).toBeNull();
    expect(await guest.entryType('/boot/vmlinuz-1')).toBeNull();
    await guest.mkdirp('/boot/grub/i386-pc');
    await guest.writeFile('/boot/grub/i386-pc/normal.mod', Uint8Array.from([4]));
    expect(await fsp.readFile(inRoot(path.join(hostBoot, 'grub/i386-pc/normal.mod')))).toEqual(Buffer.from([4]));
    expect(await fsp.readdir(hostBoot)).toEqual(['vmlinuz-1']);
  });

  it('readHead never opens special files', async () => {
    const sockPath = inRoot('etc/sock');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(sockPath, resolve));
    try {
      expect(await guest.readHead('/etc/sock', 64)).toBeNull();
      expect(await guest.entryType('/etc/sock')).toBe('other');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('refuses to write over a directory', async () => {
    await fsp.mkdir(inRoot('etc/hostname'));
    await expectCode(guest.writeText('/etc/hostname', 'x'), 'INVALID_INPUT');
    await expectCode(guest.readText('/etc/hostname'), 'INVALID_INPUT');
  });

  it('a regular file used as a directory reads as missing and cannot be written under', async () => {
    await fsp.writeFile(inRoot('etc/network'), 'not a dir');
    expect(await guest.readText('/etc/network/interfaces')).toBeNull();
    await expectCode(guest.writeText('/etc/network/interfaces', 'x'), 'NOT_FOUND');
  });
});

describe('GuestRoot.copyIntoDir', () => {
  async function sources(files: Record<string, string>): Promise<{ name: string; hostPath: string }[]> {
    const dir = path.join(tmp, 'src');
    await fsp.mkdir(dir, { recursive: true });
    const out = [];
    for (const [name, content] of Object.entries(files)) {
      await fsp.writeFile(path.join(dir, name), content, { mode: 0o644 });
      out.push({ name, hostPath: path.join(dir, name) });
    }
    return out;
  }

  it('creates the directory and copies every file with the source mode, many at a time', async () => {
    const files = await sources(Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`m${i}.mod`, `module ${i}\n`])));
    await guest.copyIntoDir('/boot/grub/i386-pc', files, 8);
    expect((await fsp.readdir(inRoot('boot/grub/i386-pc'))).length).toBe(40);
    expect(await fsp.readFile(inRoot('boot/grub/i386-pc/m17.mod'), 'utf8')).toBe('module 17\n');
    expect((await fsp.stat(inRoot('boot/grub/i386-pc/m17.mod'))).mode & 0o7777).toBe(0o644);
    // Again, over the files it made: replaced, not appended to.
    await fsp.writeFile(files[0]?.hostPath as string, 'v2\n');
    await guest.copyIntoDir('/boot/grub/i386-pc', files, 8);
    expect(await fsp.readFile(inRoot('boot/grub/i386-pc/m0.mod'), 'utf8')).toBe('v2\n');
    expect(await leftovers(inRoot('boot/grub/i386-pc'))).toEqual([]);
  });

  it('a symlink at a target name (absolute or relative, to a host file) is replaced, never written through', async () => {
    const host = await hostFile('normal.mod', 'HOST MODULE\n');
    const other = await hostFile('linux.mod', 'HOST MODULE 2\n');
    await fsp.mkdir(inRoot('boot/grub/i386-pc'), { recursive: true });
    await fsp.symlink(host.path, inRoot('boot/grub/i386-pc/normal.mod'));
    await fsp.symlink(path.relative(inRoot('boot/grub/i386-pc'), other.path), inRoot('boot/grub/i386-pc/linux.mod'));
    await guest.copyIntoDir('/boot/grub/i386-pc', await sources({ 'normal.mod': 'GUEST normal\n', 'linux.mod': 'GUEST linux\n' }));
    await host.assertUntouched();
    await other.assertUntouched();
    for (const n of ['normal', 'linux']) {
      expect((await fsp.lstat(inRoot(`boot/grub/i386-pc/${n}.mod`))).isFile()).toBe(true);
      expect(await fsp.readFile(inRoot(`boot/grub/i386-pc/${n}.mod`), 'utf8')).toBe(`GUEST ${n}\n`);
    }
  });

  it("copyFile's COPYFILE_EXCL (what copyIntoDir relies on after its unlink) refuses a symlink, even a dangling one", async () => {
    const [src] = await sources({ 'x.mod': 'X\n' });
    const host = await hostFile('exists.mod');
    const absent = path.join(hostDir, 'absent.mod');
    await fsp.symlink(host.path, inRoot('etc/l1'));
    await fsp.symlink(absent, inRoot('etc/l2'));
    for (const l of ['etc/l1', 'etc/l2']) await expect(fsp.copyFile(src?.hostPath as string, inRoot(l), fsp.constants.COPYFILE_EXCL)).rejects.toMatchObject({ code: 'EEXIST' });
    await host.assertUntouched();
    expect(await fsp.readdir(hostDir)).toEqual(['exists.mod']);
  });

  it('/boot/grub -> host dir: the directory resolves inside the guest', async () => {
    const hostGrub = path.join(tmp, 'host-grub');
    await fsp.mkdir(hostGrub);
    await fsp.mkdir(inRoot('boot'));
    await fsp.symlink(hostGrub, inRoot('boot/grub'));
    await guest.copyIntoDir('/boot/grub/i386-pc', await sources({ 'normal.mod': 'GUEST\n' }));
    expect(await fsp.readdir(hostGrub)).toEqual([]);
    expect(await fsp.readFile(inRoot(path.join(hostGrub, 'i386-pc/normal.mod')), 'utf8')).toBe('GUEST\n');
  });

  it('a socket at a name is replaced by a file; a directory at a name is refused; names must be plain', async () => {
    await fsp.mkdir(inRoot('boot/grub/i386-pc'), { recursive: true });
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(inRoot('boot/grub/i386-pc/a.mod'), resolve));
    try {
      await guest.copyIntoDir('/boot/grub/i386-pc', await sources({ 'a.mod': 'A\n' }));
      expect(await fsp.readFile(inRoot('boot/grub/i386-pc/a.mod'), 'utf8')).toBe('A\n');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await fsp.mkdir(inRoot('boot/grub/i386-pc/d.mod'));
    await expectCode(guest.copyIntoDir('/boot/grub/i386-pc', await sources({ 'd.mod': 'D\n' })), 'INVALID_INPUT');
    for (const name of ['', '.', '..', 'x/y', '../../etc/passwd']) {
      await expectCode(guest.copyIntoDir('/boot/grub/i386-pc', [{ name, hostPath: '/dev/null' }]), 'INVALID_INPUT');
    }
  });

  it('a failing copy rejects only once no other copy is in flight (the caller unmounts next)', async () => {
    const files = await sources(Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`m${i}.mod`, `module ${i}\n`])));
    files.splice(3, 0, { name: 'gone.mod', hostPath: path.join(tmp, 'src/gone.mod') });
    await expect(guest.copyIntoDir('/boot/grub/i386-pc', files, 8)).rejects.toMatchObject({ code: 'ENOENT' });
    const after = await fsp.readdir(inRoot('boot/grub/i386-pc'));
    expect(after.length).toBeLessThan(200);
    await new Promise((r) => setTimeout(r, 50));
    expect(await fsp.readdir(inRoot('boot/grub/i386-pc'))).toEqual(after);
  });

  it('a file where the directory should be is refused', async () => {
    await fsp.mkdir(inRoot('boot/grub'), { recursive: true });
    await fsp.writeFile(inRoot('boot/grub/i386-pc'), 'not a dir');
    await expectCode(guest.copyIntoDir('/boot/grub/i386-pc', await sources({ 'a.mod': 'A\n' })), 'INVALID_INPUT');
  });
});
