/**
 * debianEdits applied through GuestRoot to a copy of the template bundle's bookworm /etc (the harness's extracted
 * template root, only read here). The copy first gets back what the template cleaning removed (SSH host keys, a
 * machine id, the build host's resolver and hostname mode), as a root bundled by other means may still carry them.
 * Root: the copy keeps the template's owners (shadow is root:shadow) and new files must be root's.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GuestRoot } from '../../src/exec/guestfs/guest-root.js';
import { debianEdits, debianFilesToRead, type DebianGuestInput } from '../../src/core/guest/debian.js';
import { ensureTemplateRoot, requireRoot } from '../harness/env.js';

requireRoot();

let sourceEtc: string;
beforeAll(async () => {
  sourceEtc = path.join(await ensureTemplateRoot(), 'etc');
});

const HASH = '$y$j9T$Qm9vYmFyYmF6cXV4$N2Y0Y2E5ZjQ5ZTNkNjE5YjM1MmI1ZDg0OTBhNDk3';
const INPUT: DebianGuestInput = {
  hostname: 'web01',
  domain: 'example.com',
  fstabText: 'UUID=0b7c2f3e-58d5-4c0b-9c55-3f1f3e0f6a11 / ext4 errors=remount-ro 0 1\n',
  net: { mode: 'static', address: '192.0.2.10', prefix: 24, gateway: '192.0.2.1', dns: ['192.0.2.53'] },
  iface: 'eth0',
  rootPasswordHash: HASH,
};

let tmp: string;
let root: string;
const inRoot = (p: string) => path.join(root, p);

/** `cp -a` of the source /etc: fs.cp keeps modes and link targets; owners are copied by hand. */
async function copyEtc(): Promise<void> {
  await fsp.cp(sourceEtc, inRoot('etc'), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  for (const rel of await fsp.readdir(sourceEtc, { recursive: true })) {
    const st = await fsp.lstat(path.join(sourceEtc, rel));
    await fsp.lchown(inRoot(path.join('etc', rel)), st.uid, st.gid);
  }
}

const BUILD_HOST_RESOLV = 'nameserver 10.255.255.53\n';
const HOST_KEYS = ['ecdsa', 'ed25519', 'rsa'].flatMap((t) => [`ssh_host_${t}_key`, `ssh_host_${t}_key.pub`]);

/** Puts back what debootstrap leaves and cleanTemplateRoot removes, so the edits have it to deal with. */
async function uncleanCopy(): Promise<void> {
  for (const name of HOST_KEYS) {
    const p = inRoot(`etc/ssh/${name}`);
    await fsp.writeFile(p, `fake ${name}\n`);
    await fsp.chmod(p, name.endsWith('.pub') ? 0o644 : 0o600);
  }
  // The template's machine-id is already empty (0444); the edits must empty a real one too, keeping its mode.
  await fsp.writeFile(inRoot('etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
  expect(await modeOf('etc/machine-id')).toBe(0o444);
  await fsp.writeFile(inRoot('etc/resolv.conf'), BUILD_HOST_RESOLV);
  // debootstrap leaves hostname 0755 (the cleaning rewrites it 0644); a mode no default would give.
  await fsp.chmod(inRoot('etc/hostname'), 0o755);
}

async function applyDebian(input: DebianGuestInput = INPUT): Promise<string[]> {
  const guest = new GuestRoot(root);
  const current = await guest.snapshot(debianFilesToRead());
  return guest.applyEdits(debianEdits(input, current));
}

async function modeOf(p: string): Promise<number> {
  return (await fsp.lstat(inRoot(p))).mode & 0o7777;
}

describe('debianEdits through GuestRoot on a bookworm /etc', () => {
  beforeEach(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'vmforge-apply-debian-'));
    root = path.join(tmp, 'root');
    await fsp.mkdir(root);
    await copyEtc();
    await uncleanCopy();
  });

  afterEach(async () => {
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  it('adapts the guest', async () => {
    const shadowBefore = await fsp.lstat(inRoot('etc/shadow'));
    const defaultsBefore = await fsp.readdir(inRoot('etc/default'));
    expect((await fsp.readdir(inRoot('etc/ssh'))).filter((n) => n.startsWith('ssh_host_'))).toEqual([...HOST_KEYS].sort());
    expect(defaultsBefore).not.toContain('grub'); // so the check below sees a new file get the default mode
    await applyDebian();

    expect(await fsp.readFile(inRoot('etc/hostname'), 'utf8')).toBe('web01\n');
    expect(await modeOf('etc/hostname')).toBe(0o755); // we keep what we find
    expect(await fsp.readFile(inRoot('etc/hosts'), 'utf8')).toMatch(/^127\.0\.0\.1\tlocalhost\n127\.0\.1\.1\tweb01\.example\.com\tweb01\n/);
    expect(await fsp.readFile(inRoot('etc/hosts'), 'utf8')).toContain('\n::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\n');
    expect(await modeOf('etc/hosts')).toBe(0o644);
    expect(await fsp.readFile(inRoot('etc/fstab'), 'utf8')).toBe(INPUT.fstabText);

    const interfaces = await fsp.readFile(inRoot('etc/network/interfaces'), 'utf8');
    expect(interfaces).toContain('source /etc/network/interfaces.d/*\n');
    expect(interfaces).toContain('auto eth0\niface eth0 inet static\n\taddress 192.0.2.10/24\n\tgateway 192.0.2.1\n');
    // debootstrap copied the build host's resolv.conf; the VM must not keep it.
    expect(await fsp.readFile(inRoot('etc/resolv.conf'), 'utf8')).toContain('nameserver 192.0.2.53\n');
    expect(await fsp.readFile(inRoot('etc/resolv.conf'), 'utf8')).not.toContain(BUILD_HOST_RESOLV);

    expect(await fsp.readFile(inRoot('etc/machine-id'), 'utf8')).toBe('');
    expect(await modeOf('etc/machine-id')).toBe(0o444);

    const wants = 'etc/systemd/system/getty.target.wants';
    expect(await fsp.readlink(inRoot(`${wants}/serial-getty@ttyS0.service`))).toBe('/lib/systemd/system/serial-getty@.service');
    expect(await fsp.readlink(inRoot(`${wants}/getty@tty1.service`))).toBe('/lib/systemd/system/getty@.service');

    const grub = await fsp.readFile(inRoot('etc/default/grub'), 'utf8');
    expect(grub).toContain('GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8 net.ifnames=0"\n');
    expect(grub).toContain('GRUB_TERMINAL="console serial"\n');
    expect(await modeOf('etc/default/grub')).toBe(0o644);
    expect(await fsp.readdir(inRoot('etc/default'))).toEqual([...defaultsBefore, 'grub'].sort());

    // Only the root entry's hash changes; its aging fields (lastchg is the bootstrap day) and other lines stay.
    const shadow = (await fsp.readFile(inRoot('etc/shadow'), 'utf8')).split('\n');
    const sourceShadow = (await fsp.readFile(path.join(sourceEtc, 'shadow'), 'utf8')).split('\n');
    expect(sourceShadow[0]).toMatch(/^root:[^:]*:\d+:0:99999:7:::$/);
    expect(shadow[0]).toBe(sourceShadow[0]?.replace(/^root:[^:]*:/, `root:${HASH}:`));
    expect(shadow.slice(1)).toEqual(sourceShadow.slice(1));
    const shadowAfter = await fsp.lstat(inRoot('etc/shadow'));
    expect(shadowAfter.mode & 0o7777).toBe(0o640);
    expect([shadowAfter.uid, shadowAfter.gid]).toEqual([shadowBefore.uid, shadowBefore.gid]);

    const ssh = await fsp.readdir(inRoot('etc/ssh'));
    expect(ssh.filter((n) => n.startsWith('ssh_host_'))).toEqual([]);
    expect(ssh).toContain('sshd_config');
    expect(await fsp.readlink(inRoot('etc/systemd/system/ssh.service.wants/vmforge-ssh-hostkeys.service'))).toBe(
      '/etc/systemd/system/vmforge-ssh-hostkeys.service',
    );
    expect(await fsp.readFile(inRoot('etc/systemd/system/vmforge-ssh-hostkeys.service'), 'utf8')).toContain('ExecStart=/usr/bin/ssh-keygen -A\n');

    // Links the guest had that point outside /etc are untouched.
    expect(await fsp.readlink(inRoot('etc/mtab'))).toBe('../proc/self/mounts');
    expect(await fsp.readlink(inRoot('etc/localtime'))).toBe('/usr/share/zoneinfo/Etc/UTC');

    const unit = await fsp.lstat(inRoot('etc/systemd/system/vmforge-ssh-hostkeys.service'));
    expect([unit.uid, unit.gid]).toEqual([0, 0]);

    const stray: string[] = [];
    for (const rel of await fsp.readdir(inRoot('etc'), { recursive: true })) if (path.basename(rel).startsWith('.vmforge-')) stray.push(rel);
    expect(stray).toEqual([]);
  });

  it('a second run leaves every file as the first run left it', async () => {
    await applyDebian();
    const snapshot = async () => {
      const out: Record<string, string> = {};
      for (const rel of (await fsp.readdir(inRoot('etc'), { recursive: true })).sort()) {
        const st = await fsp.lstat(inRoot(path.join('etc', rel)));
        out[rel] = st.isSymbolicLink()
          ? `-> ${await fsp.readlink(inRoot(path.join('etc', rel)))}`
          : st.isFile()
            ? `${(st.mode & 0o7777).toString(8)} ${await fsp.readFile(inRoot(path.join('etc', rel)), 'utf8')}`
            : `dir ${(st.mode & 0o7777).toString(8)}`;
      }
      return out;
    };
    const first = await snapshot();
    await applyDebian();
    expect(await snapshot()).toEqual(first);
  });

  it('dhcp leaves resolv.conf to the DHCP client', async () => {
    await applyDebian({ ...INPUT, net: { mode: 'dhcp' } });
    expect(await fsp.readFile(inRoot('etc/network/interfaces'), 'utf8')).toContain('iface eth0 inet dhcp\n');
    expect(await fsp.readFile(inRoot('etc/resolv.conf'), 'utf8')).toBe(BUILD_HOST_RESOLV);
  });

  it('a booby-trapped template cannot make the edits touch the host', async () => {
    const hostDir = path.join(tmp, 'host');
    await fsp.mkdir(hostDir);
    const hostFiles = { hostname: 'HOST NAME\n', shadow: 'root:HOSTHASH:1::::::\n', grub: 'HOST GRUB\n' };
    for (const [name, text] of Object.entries(hostFiles)) await fsp.writeFile(path.join(hostDir, name), text);
    const hostNet = path.join(tmp, 'host-network');
    await fsp.mkdir(hostNet);

    await fsp.rm(inRoot('etc/hostname'));
    await fsp.symlink(path.join(hostDir, 'hostname'), inRoot('etc/hostname'));
    await fsp.rm(inRoot('etc/shadow'));
    await fsp.symlink(`../../../../../../../../..${path.join(hostDir, 'shadow')}`, inRoot('etc/shadow'));
    await fsp.rm(inRoot('etc/network'), { recursive: true });
    await fsp.symlink(hostNet, inRoot('etc/network'));
    await fsp.rm(inRoot('etc/default'), { recursive: true });
    await fsp.symlink('../../../../../../..', inRoot('etc/default'));

    // The root hash cannot be set (the guest has no shadow of its own), so this input leaves it out.
    await applyDebian({ ...INPUT, rootPasswordHash: undefined });

    for (const [name, text] of Object.entries(hostFiles)) expect(await fsp.readFile(path.join(hostDir, name), 'utf8')).toBe(text);
    expect(await fsp.readdir(hostNet)).toEqual([]);
    expect(await fsp.readFile(inRoot('etc/hostname'), 'utf8')).toBe('web01\n');
    // /etc/network re-rooted to <root>/<hostNet>, created there; /etc/default clamped to the guest root.
    expect(await fsp.readFile(inRoot(path.join(hostNet, 'interfaces')), 'utf8')).toContain('iface eth0 inet static');
    expect(await fsp.readFile(inRoot('grub'), 'utf8')).toContain('GRUB_TERMINAL="console serial"');
    expect((await fsp.readdir(tmp)).sort()).toEqual(['host', 'host-network', 'root']);
  });

  it('refuses a root password when /etc/shadow is not the guest’s own file', async () => {
    await fsp.rm(inRoot('etc/shadow'));
    await fsp.symlink('/etc/shadow-elsewhere', inRoot('etc/shadow'));
    await expect(applyDebian()).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
