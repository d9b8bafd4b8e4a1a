import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findMount, parseMountinfo } from './mount.js';

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
