/**
 * Disk layer against the real tools (root): MBR bytes vs sfdisk, both partition strategies with real loop
 * devices, mkfs/mkswap UUIDs vs blkid, and a BIOS GRUB install booted in qemu (TCG) that must print a marker
 * on the serial port. Everything made here is undone in `finally`/afterAll, even when an assertion fails.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRUB_BIOS_PREFIX, GRUB_I386_PC_DIR } from '../../src/core/boot/grub-bios.js';
import { planDiskLayout, type DiskLayout } from '../../src/core/disk/layout.js';
import { mbrBytes } from '../../src/core/disk/mbr.js';
import { uuidFromBytes } from '../../src/core/disk/uuid.js';
import type { FsType } from '../../src/core/model/spec.js';
import { GiB, MiB } from '../../src/core/units.js';
import { VmforgeError } from '../../src/errors.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { createSparseFile, readAt, removeFile, writeAt } from '../../src/exec/tools/disk-image.js';
import { installGrubBios } from '../../src/exec/tools/grub.js';
import { grubCoreImage } from '../../src/exec/tools/grub-core-cache.js';
import {
  attachPartitions,
  detachPartitions,
  loopsBackingFile,
  type PartitionStrategy,
} from '../../src/exec/tools/loop.js';
import { makeFilesystem, makeSwap } from '../../src/exec/tools/mkfs.js';
import { findMount, mount, umount } from '../../src/exec/tools/mount.js';
import { requireRoot } from '../harness/env.js';

requireRoot();

const runner = new HostProcessRunner();

/** Undo actions run newest first; every one runs even if an earlier one fails. */
class UndoStack {
  private readonly items: { what: string; fn: () => Promise<unknown> }[] = [];
  push(what: string, fn: () => Promise<unknown>): void {
    this.items.push({ what, fn });
  }
  async run(): Promise<void> {
    const errors: string[] = [];
    for (const { what, fn } of this.items.splice(0).reverse()) {
      await fn().catch((e: unknown) => errors.push(`${what}: ${String(e)}`));
    }
    if (errors.length > 0) throw new Error(`cleanup failed:\n${errors.join('\n')}`);
  }
}

async function blkid(device: string): Promise<{ uuid: string; type: string }> {
  // -p probes the device itself, bypassing blkid's cache (which may remember an earlier filesystem).
  const { stdout } = await runner.run(['blkid', '-p', '-o', 'export', device]);
  const kv = Object.fromEntries(stdout.trim().split('\n').map((l) => l.split('=', 2) as [string, string]));
  return { uuid: kv.UUID ?? '', type: kv.TYPE ?? '' };
}

const newUuid = () => uuidFromBytes(randomBytes(16));

describe('disk image, partitions, filesystems and BIOS GRUB (root)', () => {
  let work = '';
  const files: string[] = [];
  const global = new UndoStack();

  beforeAll(async () => {
    work = await mkdtemp('/var/tmp/vmforge-it-disk-');
    global.push('remove work dir', () => rm(work, { recursive: true, force: true }));
  });

  afterAll(async () => {
    await global.run();
    for (const f of files) expect(await loopsBackingFile(runner, f)).toEqual([]);
  });

  async function newDisk(name: string, layout: DiskLayout, undo: UndoStack): Promise<string> {
    const path = join(work, name);
    files.push(path);
    await createSparseFile(path, layout.diskBytes);
    undo.push(`remove ${path}`, () => removeFile(path));
    await writeAt(path, 0, mbrBytes(layout, randomBytes(4).readUInt32LE(0)));
    return path;
  }

  it('writes an MBR that sfdisk reads back as the planned layout, byte-identical to sfdisk own', async () => {
    const undo = new UndoStack();
    try {
      for (const [diskBytes, swapBytes] of [
        [GiB, 128 * MiB],
        [20 * GiB, 0],
        [40 * GiB, 2 * GiB],
      ] as const) {
        const layout = planDiskLayout({ diskBytes, swapBytes });
        const sig = 0x1234abcd;
        const ours = join(work, `mbr-${diskBytes}.raw`);
        await createSparseFile(ours, diskBytes);
        undo.push(`remove ${ours}`, () => removeFile(ours));
        await writeAt(ours, 0, mbrBytes(layout, sig));

        const { stdout } = await runner.run(['sfdisk', '-J', ours]);
        const table = (JSON.parse(stdout) as { partitiontable: { label: string; id: string; partitions: Record<string, unknown>[] } })
          .partitiontable;
        expect(table.label).toBe('dos');
        expect(table.id).toBe('0x1234abcd');
        expect(table.partitions.map((p) => [p.start, p.size, p.type, p.bootable ?? false])).toEqual(
          layout.partitions.map((p) => [p.startLba, p.sectors, p.type.toString(16), p.bootable]),
        );

        // Let sfdisk write the same table (from our --dump) onto a blank file: CHS fields included, the bytes must match.
        const dump = (await runner.run(['sfdisk', '--dump', ours])).stdout;
        const theirs = join(work, `mbr-${diskBytes}-sfdisk.raw`);
        await createSparseFile(theirs, diskBytes);
        undo.push(`remove ${theirs}`, () => removeFile(theirs));
        await runner.run(['sfdisk', '--quiet', '--no-reread', '--no-tell-kernel', theirs], { input: dump.replace(/^device:.*$/m, '') });
        expect((await readAt(ours, 0, 512)).toString('hex')).toBe((await readAt(theirs, 0, 512)).toString('hex'));
      }
    } finally {
      await undo.run();
    }
  });

  it.each<[PartitionStrategy, FsType]>([
    ['loop-offset', 'ext4'],
    ['loop-offset', 'xfs'],
    ['partx', 'ext4'],
    ['partx', 'xfs'],
  ])('attaches with %s, makes %s and swap whose UUIDs blkid confirms, mounts, and undoes it all', async (strategy, fs) => {
    const undo = new UndoStack();
    try {
      const layout = planDiskLayout({ diskBytes: GiB, swapBytes: 64 * MiB, fs });
      const disk = await newDisk(`parts-${strategy}-${fs}.raw`, layout, undo);

      const att = await attachPartitions(runner, { file: disk, layout, strategy });
      undo.push('detach partitions', () => detachPartitions(runner, att.undo));
      expect(att.devices.map((d) => d.role)).toEqual(['root', 'swap']);
      expect((await loopsBackingFile(runner, disk)).length).toBe(strategy === 'partx' ? 1 : 2);

      const root = att.devices[0]?.device ?? '';
      const swap = att.devices[1]?.device ?? '';
      const rootUuid = newUuid();
      const swapUuid = newUuid();
      expect(await makeFilesystem(runner, { device: root, fs, uuid: rootUuid })).toEqual({ uuid: rootUuid });
      expect(await makeSwap(runner, { device: swap, uuid: swapUuid })).toEqual({ uuid: swapUuid });
      expect(await blkid(root)).toEqual({ uuid: rootUuid, type: fs });
      expect(await blkid(swap)).toEqual({ uuid: swapUuid, type: 'swap' });

      const mnt = join(work, `mnt-${strategy}-${fs}`);
      await mkdir(mnt);
      const m = await mount(runner, { device: root, target: mnt, fsType: fs });
      undo.push(`umount ${mnt}`, () => umount(runner, m));
      expect(await findMount(mnt)).toMatchObject({ fsType: fs, source: root });
      expect(await mount(runner, { device: root, target: mnt, fsType: fs })).toEqual(m);
      await writeFile(join(mnt, 'hello'), 'hi\n');

      expect(await umount(runner, m)).toBe('unmounted');
      expect(await umount(runner, m)).toBe('gone');
      await detachPartitions(runner, att.undo);
      await detachPartitions(runner, att.undo);
      expect(await loopsBackingFile(runner, disk)).toEqual([]);
    } finally {
      await undo.run();
    }
  });

  it('refuses to mount over something else', async () => {
    const undo = new UndoStack();
    try {
      const layout = planDiskLayout({ diskBytes: 256 * MiB, swapBytes: 0 });
      const disk = await newDisk('conflict.raw', layout, undo);
      const att = await attachPartitions(runner, { file: disk, layout });
      undo.push('detach', () => detachPartitions(runner, att.undo));
      const dev = att.devices[0]?.device ?? '';
      await makeFilesystem(runner, { device: dev, fs: 'ext4', uuid: newUuid() });
      const mnt = join(work, 'mnt-conflict');
      await mkdir(mnt);
      await runner.run(['mount', '-t', 'tmpfs', 'vmforge-test', mnt]);
      undo.push('umount tmpfs', () => runner.run(['umount', mnt]));
      await expect(mount(runner, { device: dev, target: mnt })).rejects.toMatchObject({ code: 'CONFLICT' });
    } finally {
      await undo.run();
    }
  });

  it.each<FsType>(['ext4', 'xfs'])('installs BIOS GRUB on %s that boots in qemu and reads grub.cfg by UUID', async (fs) => {
    const undo = new UndoStack();
    const log = join(work, `serial-${fs}.log`);
    try {
      const layout = planDiskLayout({ diskBytes: GiB, swapBytes: 64 * MiB, fs });
      const disk = await newDisk(`grub-${fs}.raw`, layout, undo);
      const att = await attachPartitions(runner, { file: disk, layout });
      undo.push('detach', () => detachPartitions(runner, att.undo));
      const rootUuid = newUuid();
      await makeFilesystem(runner, { device: att.devices[0]?.device ?? '', fs, uuid: rootUuid });
      const mnt = join(work, `mnt-grub-${fs}`);
      await mkdir(mnt);
      const m = await mount(runner, { device: att.devices[0]?.device ?? '', target: mnt, fsType: fs });
      undo.push(`umount ${mnt}`, () => umount(runner, m));

      const cfg = [
        'serial --unit=0 --speed=115200',
        'terminal_input serial',
        'terminal_output serial',
        `search --no-floppy --fs-uuid --set=found ${rootUuid}`,
        'echo "VMFORGE-GRUB-OK prefix=$prefix found=$found"',
        'halt',
        '',
      ].join('\n');
      // The disk that boots gets its core.img from the cache (filled by the first call here), as builds after the
      // first one on a host do.
      const coreCacheDir = join(work, `grub-core-${fs}`);
      const made = await grubCoreImage(runner, { fs, grubDir: GRUB_I386_PC_DIR, cacheDir: coreCacheDir });
      expect(made.cached).toBe(false);
      const res = await installGrubBios(runner, { diskPath: disk, rootMountDir: mnt, layout, fs, grubCfgText: cfg, tmpDir: work, coreCacheDir });
      expect(res.coreCached).toBe(true);
      expect(await readAt(disk, 1024, made.core.length - 512)).toEqual(made.core.subarray(512));
      expect(res.coreSectors).toBeLessThan(layout.firstPartitionLba);
      expect(await readFile(join(mnt, 'boot/grub/grub.cfg'), 'utf8')).toBe(cfg);
      await readFile(join(mnt, 'boot/grub/i386-pc/normal.mod'));
      // The partition table survived the boot sector patch.
      expect(JSON.parse((await runner.run(['sfdisk', '-J', disk])).stdout).partitiontable.partitions).toHaveLength(2);

      expect(await umount(runner, m)).toBe('unmounted');
      await detachPartitions(runner, att.undo);

      const started = Date.now();
      let exitedByItself = true;
      try {
        await runner.run(
          [
            'qemu-system-x86_64',
            '-machine', 'pc',
            '-m', '256',
            '-display', 'none',
            '-monitor', 'none',
            '-serial', `file:${log}`,
            '-drive', `file=${disk},format=raw,if=virtio`,
            '-net', 'none',
            '-no-reboot',
          ],
          { timeoutMs: 60_000 },
        );
      } catch (e) {
        // GRUB's halt powers off via ACPI; if it cannot, the timeout kills qemu and the marker still decides.
        if (!(e instanceof VmforgeError && e.code === 'TIMEOUT')) throw e;
        exitedByItself = false;
      }
      const serial = await readFile(log, 'latin1');
      expect(serial).toContain(`VMFORGE-GRUB-OK prefix=${GRUB_BIOS_PREFIX} found=hd0,msdos1`);
      expect(exitedByItself).toBe(true);
      console.log(`grub on ${fs}: marker seen, qemu ran ${((Date.now() - started) / 1000).toFixed(1)} s`);
    } finally {
      await undo.run();
    }
  });
});
