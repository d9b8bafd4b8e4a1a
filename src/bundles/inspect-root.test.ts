import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inspectRoot } from './inspect-root.js';

let tmp: string;
let root: string;
const inRoot = (p: string) => path.join(root, p);

/** A little-endian ELF64 header for `machine` (e_machine at offset 18). */
function elfHead(machine: number): Buffer {
  const b = Buffer.alloc(64);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  b.writeUInt16LE(machine, 18);
  return b;
}

async function put(guestPath: string, content: string | Buffer): Promise<void> {
  await fsp.mkdir(path.dirname(inRoot(guestPath)), { recursive: true });
  await fsp.writeFile(inRoot(guestPath), content);
}

beforeEach(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'vmforge-inspect-'));
  root = path.join(tmp, 'root');
  await fsp.mkdir(root);
});

afterEach(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

describe('inspectRoot', () => {
  it('reads os-release through its usual link, the kernels in /boot and the ELF machine', async () => {
    await put('/usr/lib/os-release', 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n');
    await fsp.mkdir(inRoot('etc'));
    await fsp.symlink('../usr/lib/os-release', inRoot('etc/os-release'));
    await put('/boot/vmlinuz-6.1.0-9-cloud-amd64', '');
    await put('/boot/vmlinuz-6.1.0-10-cloud-amd64', '');
    await put('/boot/initrd.img-6.1.0-10-cloud-amd64', '');
    await put('/usr/bin/env', elfHead(0x3e));

    expect(await inspectRoot(root)).toEqual({
      os: { id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)', family: 'debian' },
      kernels: [
        { version: '6.1.0-10-cloud-amd64', kernel: '/boot/vmlinuz-6.1.0-10-cloud-amd64', initrd: '/boot/initrd.img-6.1.0-10-cloud-amd64' },
        { version: '6.1.0-9-cloud-amd64', kernel: '/boot/vmlinuz-6.1.0-9-cloud-amd64' },
      ],
      arch: 'x86_64',
      bootloader: 'none',
    });
  });

  it('detects the OS from redhat-release when os-release is missing, and the bootloader', async () => {
    await put('/etc/redhat-release', 'CentOS release 6.10 (Final)\n');
    await put('/boot/grub/grub.conf', 'default=0\n');
    const r = await inspectRoot(root);
    expect(r.os).toEqual({ id: 'centos', versionId: '6.10', prettyName: 'CentOS release 6.10 (Final)', family: 'rhel' });
    expect(r.bootloader).toBe('grub-legacy');
    await put('/boot/grub2/grub.cfg', '');
    expect((await inspectRoot(root)).bootloader).toBe('grub2');
  });

  it('falls back to /usr/lib/os-release and to later ELF candidates; an empty root has nothing to report', async () => {
    expect(await inspectRoot(root)).toEqual({ os: { id: 'linux', versionId: '', prettyName: 'linux', family: 'other' }, kernels: [], arch: undefined, bootloader: 'none' });
    await put('/usr/lib/os-release', 'ID=fedora\n');
    await fsp.mkdir(inRoot('etc/os-release'), { recursive: true }); // not a file: skipped, as missing would be
    await put('/usr/bin/env', '#!/bin/sh\n');
    await fsp.mkdir(inRoot('bin'));
    await fsp.symlink('/usr/bin/busybox', inRoot('bin/sh'));
    await put('/usr/bin/busybox', elfHead(0xb7));
    const r = await inspectRoot(root);
    expect(r.os.id).toBe('fedora');
    expect(r.arch).toBe('aarch64');
  });

  it('decodes a non-UTF-8 os-release leniently rather than failing', async () => {
    await put('/etc/os-release', Buffer.concat([Buffer.from('ID=x\nNAME="caf'), Buffer.from([0xe9]), Buffer.from('"\n')]));
    expect((await inspectRoot(root)).os).toMatchObject({ id: 'x', prettyName: 'caf\ufffd' });
  });

  it('never reads the host through links that point out of the root', async () => {
    const host = path.join(tmp, 'host');
    await fsp.mkdir(path.join(host, 'boot'), { recursive: true });
    await fsp.writeFile(path.join(host, 'os-release'), 'ID=host\n');
    await fsp.writeFile(path.join(host, 'boot/vmlinuz-9.9-host'), '');
    await fsp.writeFile(path.join(host, 'env'), elfHead(0x3e));
    await fsp.mkdir(inRoot('etc'));
    await fsp.mkdir(inRoot('usr/bin'), { recursive: true });
    await fsp.symlink(path.join(host, 'os-release'), inRoot('etc/os-release'));
    await fsp.symlink('../../../../../../../../host/boot', inRoot('boot'));
    await fsp.symlink(path.join(host, 'env'), inRoot('usr/bin/env'));
    expect(await inspectRoot(root)).toEqual({ os: { id: 'linux', versionId: '', prettyName: 'linux', family: 'other' }, kernels: [], arch: undefined, bootloader: 'none' });
  });
});
