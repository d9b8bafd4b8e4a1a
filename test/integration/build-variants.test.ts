/**
 * Cold builds without booting (--no-start), checked from the outside: the disk image's partition table, the
 * filesystem UUIDs, and the guest files the Debian adapter wrote, for xfs + partx + static addressing and
 * ext4 + loop-offset + DHCP. Also: the generated domain XML passes virt-xml-validate and libvirt accepted it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdir, open, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, uniqueName, type TestEnv } from '../harness/env.js';

let bundle: string;
beforeAll(async () => {
  await ensureLibvirt();
  bundle = await ensureTemplate();
});

/** Mounts partition 1 of a disk image read-only through its own loop device and hands the dir to fn. */
async function withRootMounted<T>(disk: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const sf = JSON.parse((await execa('sfdisk', ['-J', disk])).stdout) as { partitiontable: { partitions: { start: number; size: number }[] } };
  const p1 = sf.partitiontable.partitions[0] as { start: number; size: number };
  const loop = (await execa('losetup', ['-f', '--show', '-r', '-o', String(p1.start * 512), '--sizelimit', String(p1.size * 512), disk])).stdout.trim();
  const dir = `${disk}.mnt`;
  await mkdir(dir);
  try {
    await execa('mount', ['-o', 'ro', loop, dir]);
    try {
      return await fn(dir);
    } finally {
      await execa('umount', [dir]);
    }
  } finally {
    await rmdir(dir);
    await execa('losetup', ['-d', loop]);
  }
}

describe.each([
  { label: 'xfs, partx, static address', fs: 'xfs', access: 'partx', ip: ['--ip', '10.77.0.9/24', '--gateway', '10.77.0.1', '--dns', '10.77.0.53'] },
  { label: 'ext4, loop-offset, DHCP', fs: 'ext4', access: 'loop-offset', ip: [] as string[] },
])('build --no-start: $label', ({ fs, access, ip }) => {
  let env: TestEnv;
  const name = uniqueName('vmfvar');
  beforeAll(async () => {
    env = await makeTestEnv(`storage:\n  partitionAccess: ${access}\n`);
  });
  afterAll(async () => {
    await env.cli(['vm', 'destroy', name]);
    expect(await leftovers(env, name)).toEqual([]);
    await env.cleanup();
  });

  // A static address needs a NIC to be on (--ip with --net none is refused): user networking attaches to no host bridge.
  it('produces a disk and domain that match the request', async () => {
    const r = await env.cli(['vm', 'build', name, '--bundle', bundle, '--fs', fs, '--disk', '3G', '--swap', '256M', '--cpus', '2', '--memory', '512M', '--net', ip.length ? 'user' : 'none', '--no-start', ...ip]);
    expect(r.exitCode, r.stderr).toBe(0);
    const disk = join(env.config.storage.dir, `${name}.img`);

    // MBR: root then swap, 1 MiB aligned, root bootable
    const sf = JSON.parse((await execa('sfdisk', ['-J', disk])).stdout) as { partitiontable: { label: string; partitions: { start: number; type: string; bootable?: boolean }[] } };
    expect(sf.partitiontable.label).toBe('dos');
    expect(sf.partitiontable.partitions.map((p) => p.type)).toEqual(['83', '82']);
    expect(sf.partitiontable.partitions[0]?.start).toBe(2048);
    expect(sf.partitiontable.partitions[0]?.bootable).toBe(true);
    // GRUB's boot.img is in sector 0 (its "GRUB " string), core.img right after
    const fh = await open(disk, 'r');
    const head = Buffer.alloc(440);
    await fh.read(head, 0, 440, 0).finally(() => fh.close());
    expect(head.includes(Buffer.from('GRUB '))).toBe(true);

    await withRootMounted(disk, async (root) => {
      const blkid = (await execa('findmnt', ['-no', 'UUID,FSTYPE', root])).stdout.trim().split(/\s+/);
      expect(blkid[1]).toBe(fs);
      const fstab = await readFile(join(root, 'etc/fstab'), 'utf8');
      expect(fstab).toContain(`UUID=${blkid[0]} / ${fs} `);
      expect(fstab).toMatch(/UUID=\S+ none swap sw 0 0/);
      expect((await readFile(join(root, 'etc/hostname'), 'utf8')).trim()).toBe(name);
      expect(await readFile(join(root, 'etc/hosts'), 'utf8')).toMatch(new RegExp(`^127\\.0\\.1\\.1\\s+${name}$`, 'm'));
      expect(await readFile(join(root, 'etc/machine-id'), 'utf8')).toBe('');
      const ifaces = await readFile(join(root, 'etc/network/interfaces'), 'utf8');
      if (ip.length) {
        expect(ifaces).toMatch(/iface eth0 inet static/);
        expect(ifaces).toMatch(/address 10\.77\.0\.9\/24/);
        expect(ifaces).toMatch(/gateway 10\.77\.0\.1/);
      } else {
        expect(ifaces).toMatch(/iface eth0 inet dhcp/);
      }
      const grubCfg = await readFile(join(root, 'boot/grub/grub.cfg'), 'utf8');
      expect(grubCfg).toContain(`root=UUID=${blkid[0]}`);
      expect(grubCfg).toContain('console=ttyS0,115200n8');
    });

    // libvirt has the domain as defined, with autostart, not running
    const uri = env.config.libvirt.uri;
    expect((await execa('virsh', ['-q', '-c', uri, 'domstate', name])).stdout.trim()).toBe('shut off');
    expect((await execa('virsh', ['-q', '-c', uri, 'dominfo', name])).stdout).toMatch(/Autostart:\s+enable/);
    const xml = (await execa('virsh', ['-q', '-c', uri, 'dumpxml', '--inactive', name])).stdout;
    expect(xml).toContain(`<source file='${disk}'/>`);
    expect(xml).toMatch(/<vcpu placement='static'>2<\/vcpu>/);
    const xmlFile = join(env.dir, `${name}.xml`);
    await writeFile(xmlFile, xml);
    await execa('virt-xml-validate', [xmlFile, 'domain']);

    // nothing of the build is left mounted or attached
    const loops = (await execa('losetup', ['-J', '-l'])).stdout;
    expect(loops).not.toContain(disk);
  });
});
