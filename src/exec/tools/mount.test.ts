import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CommandRunner } from '../runner.js';
import { findMount, guestMountOptions, mount, parseMountinfo, privateMountRoot } from './mount.js';

const MOUNTINFO = [
  '22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro',
  '98 22 7:0 / /var/tmp/vm\\040one/mnt rw,relatime shared:50 - ext4 /dev/loop0 rw',
  '99 98 7:1 / /var/tmp/vm\\040one/mnt rw,relatime - xfs /dev/loop1 rw,attr2',
  '100 22 0:5 / /dev rw,nosuid - devtmpfs udev rw,size=10k',
  '',
].join('\n');

describe('parseMountinfo', () => {
  it('reads mount point, fs type and source, unescaping octal', () => {
    const e = parseMountinfo(MOUNTINFO);
    expect(e).toHaveLength(4);
    expect(e[1]).toEqual({ mountPoint: '/var/tmp/vm one/mnt', fsType: 'ext4', source: '/dev/loop0', options: 'rw,relatime' });
    expect(e[3]).toMatchObject({ mountPoint: '/dev', fsType: 'devtmpfs', source: 'udev' });
  });
});

describe('findMount', () => {
  it('returns the topmost mount at a path, or null', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmforge-mountinfo-'));
    try {
      const file = join(dir, 'mountinfo');
      await writeFile(file, MOUNTINFO);
      expect(await findMount('/var/tmp/vm one/mnt', file)).toMatchObject({ source: '/dev/loop1', fsType: 'xfs' });
      expect(await findMount('/var/tmp/nothing', file)).toBeNull();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('guest mounts', () => {
  it('always get nosuid,nodev,noexec, after the caller\'s options, which cannot turn them off', () => {
    expect(guestMountOptions()).toEqual(['nosuid', 'nodev', 'noexec']);
    expect(guestMountOptions(['ro', 'noload'])).toEqual(['ro', 'noload', 'nosuid', 'nodev', 'noexec']);
    expect(guestMountOptions(['suid', 'dev', 'exec', 'defaults', 'user', 'nosuid'])).toEqual(['nosuid', 'nodev', 'noexec']);
  });

  it('mount passes them to mount(8), with or without options of its own', async () => {
    const calls: string[][] = [];
    const runner: CommandRunner = {
      run: async (argv) => {
        calls.push([...argv]);
        return { stdout: '', stderr: '', exitCode: 0 };
      },
    };
    await mount(runner, { device: '/dev/hd-none', target: '/var/tmp/hd-not-mounted', fsType: 'ext4' });
    await mount(runner, { device: '/dev/hd-none', target: '/var/tmp/hd-not-mounted', fsType: 'xfs', options: ['ro', 'norecovery'] });
    expect(calls).toEqual([
      ['mount', '-t', 'ext4', '-o', 'nosuid,nodev,noexec', '/dev/hd-none', '/var/tmp/hd-not-mounted'],
      ['mount', '-t', 'xfs', '-o', 'ro,norecovery,nosuid,nodev,noexec', '/dev/hd-none', '/var/tmp/hd-not-mounted'],
    ]);
  });

  it('privateMountRoot makes <runDir>/mnt 0700, and tightens one that exists with a wider mode', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hd-mnt-root-'));
    try {
      expect(await privateMountRoot(join(dir, 'a'))).toBe(join(dir, 'a/mnt'));
      expect((await stat(join(dir, 'a/mnt'))).mode & 0o7777).toBe(0o700);
      await mkdir(join(dir, 'b/mnt'), { recursive: true });
      await chmod(join(dir, 'b/mnt'), 0o1777);
      await privateMountRoot(join(dir, 'b'));
      expect((await stat(join(dir, 'b/mnt'))).mode & 0o7777).toBe(0o700);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
