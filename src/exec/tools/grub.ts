/**
 * BIOS GRUB install into a raw disk image file, from the host's GRUB (grub-pc-bin): no chroot, no
 * grub-install, no loop device for the whole disk. Boot code and core.img go into the image file at byte
 * offsets; modules and grub.cfg go into the mounted root filesystem. core.img and the modules come from
 * the same directory, because GRUB refuses modules from a different build.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  assertCoreFits,
  GRUB_BIOS_PREFIX,
  GRUB_CORE_LBA,
  GRUB_I386_PC_DIR,
  patchBootSector,
  patchCoreImage,
  SECTOR,
} from '../../core/boot/grub-bios.js';
import type { DiskLayout } from '../../core/disk/layout.js';
import type { FsType } from '../../core/model/spec.js';
import { VmforgeError } from '../../errors.js';
import { GuestRoot } from '../guestfs/guest-root.js';
import type { CommandRunner } from '../runner.js';
import { readAt, writeAt } from './disk-image.js';
import { grubCoreImage } from './grub-core-cache.js';

/** GRUB_BIOS_PREFIX as a path inside the root filesystem. */
const GUEST_GRUB_DIR = '/boot/grub';
/** Files in flight while copying the ~280 modules; libuv runs 4 at a time, the rest queue without waiting on us. */
const MODULE_COPY_CONCURRENCY = 8;

export interface InstallGrubBiosInput {
  /** Raw disk image whose sector 0 already holds the MBR partition table of `layout`. */
  diskPath: string;
  /** Where partition 1 (the root filesystem, holding /boot) is mounted. */
  rootMountDir: string;
  layout: DiskLayout;
  fs: FsType;
  grubCfgText: string;
  /** Host directory with boot.img, the i386-pc modules and what grub-mkimage needs. */
  grubDir?: string;
  /** Directory for the temporary core.img when there is no coreCacheDir. */
  tmpDir?: string;
  /**
   * false: no fsync after the sector writes. For a disk whose root filesystem is mounted through a loop device on
   * `diskPath` and unmounted afterwards: the unmount's flush makes the loop driver fsync the whole backing file (or
   * LV), these sectors included, and a build that crashes before then removes the disk anyway. Under I/O load
   * the two fsyncs took 10-600 ms. Default true.
   */
  syncWrites?: boolean;
  /** Cache of grub-mkimage's output (exec/tools/grub-core-cache.ts); without it grub-mkimage runs every time. */
  coreCacheDir?: string;
  signal?: AbortSignal;
}

export interface GrubInstallResult {
  coreSectors: number;
  modulesCopied: number;
  /** core.img came from the cache: grub-mkimage did not run. */
  coreCached: boolean;
}

export async function installGrubBios(runner: CommandRunner, input: InstallGrubBiosInput): Promise<GrubInstallResult> {
  const grubDir = input.grubDir ?? GRUB_I386_PC_DIR;
  const root = input.layout.partitions.find((p) => p.index === 1);
  if (!root || root.role !== 'root') {
    throw new VmforgeError('INTERNAL', `GRUB's prefix ${GRUB_BIOS_PREFIX} needs the root filesystem in partition 1`);
  }

  let bootImg: Buffer;
  try {
    bootImg = await readFile(join(grubDir, 'boot.img'));
  } catch {
    throw new VmforgeError('MISSING_TOOL', `GRUB BIOS images are missing (${join(grubDir, 'boot.img')})`, {
      hint: 'install them with: apt-get install grub-pc-bin',
    });
  }

  // The disk's boot code and the module copy touch different things: done at the same time, grub-mkimage (on a
  // cache miss) runs while the modules are copied.
  const [boot, modules] = await Promise.allSettled([writeBootCode(runner, input, grubDir, bootImg), copyModules(input, grubDir)]);
  if (boot.status === 'rejected') throw boot.reason;
  if (modules.status === 'rejected') throw modules.reason;
  // grub.cfg last: a disk whose GRUB finds a grub.cfg has its modules.
  await new GuestRoot(input.rootMountDir).writeText(`${GUEST_GRUB_DIR}/grub.cfg`, input.grubCfgText);
  return { ...boot.value, modulesCopied: modules.value };
}

async function writeBootCode(
  runner: CommandRunner,
  input: InstallGrubBiosInput,
  grubDir: string,
  bootImg: Buffer,
): Promise<{ coreSectors: number; coreCached: boolean }> {
  const { core, cached } = await grubCoreImage(runner, {
    fs: input.fs,
    grubDir,
    ...(input.coreCacheDir === undefined ? {} : { cacheDir: input.coreCacheDir }),
    ...(input.tmpDir === undefined ? {} : { tmpDir: input.tmpDir }),
    ...(input.signal === undefined ? {} : { signal: input.signal }),
  });

  assertCoreFits({ coreBytes: core.length, coreLba: GRUB_CORE_LBA, firstPartitionLba: input.layout.firstPartitionLba });
  const patchedCore = patchCoreImage(core, GRUB_CORE_LBA);
  const mbr = await readAt(input.diskPath, 0, SECTOR);
  const bootSector = patchBootSector(bootImg, mbr, GRUB_CORE_LBA);

  // core.img first, then sector 0: with syncWrites, a crash in between leaves a disk that still has no boot code,
  // not one whose boot code jumps into garbage.
  const sync = { sync: input.syncWrites !== false };
  await writeAt(input.diskPath, GRUB_CORE_LBA * SECTOR, patchedCore, sync);
  await writeAt(input.diskPath, 0, bootSector, sync);
  return { coreSectors: patchedCore.length / SECTOR, coreCached: cached };
}

/**
 * Through GuestRoot: a template whose /boot or /boot/grub is a symlink must not make us write outside the guest.
 * copyIntoDir resolves /boot/grub/i386-pc once and creates each file without following what is at its name.
 */
async function copyModules(input: InstallGrubBiosInput, grubDir: string): Promise<number> {
  const files = (await readdir(grubDir)).filter((f) => f.endsWith('.mod') || f.endsWith('.lst'));
  const guest = new GuestRoot(input.rootMountDir);
  await guest.copyIntoDir(`${GUEST_GRUB_DIR}/i386-pc`, files.map((f) => ({ name: f, hostPath: join(grubDir, f) })), MODULE_COPY_CONCURRENCY);
  return files.length;
}
