/**
 * BIOS GRUB install into a raw disk image file, from the host's GRUB (grub-pc-bin): no chroot, no
 * grub-install, no loop device for the whole disk. Boot code and core.img go into the image file at byte
 * offsets; modules and grub.cfg go into the mounted root filesystem. core.img and the modules come from
 * the same directory, because GRUB refuses modules from a different build.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assertCoreFits,
  GRUB_BIOS_PREFIX,
  GRUB_CORE_LBA,
  GRUB_I386_PC_DIR,
  grubCoreArgv,
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

/** GRUB_BIOS_PREFIX as a path inside the root filesystem. */
const GUEST_GRUB_DIR = '/boot/grub';

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
  /** Directory for the temporary core.img. */
  tmpDir?: string;
  signal?: AbortSignal;
}

export interface GrubInstallResult {
  coreSectors: number;
  modulesCopied: number;
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

  const work = await mkdtemp(join(input.tmpDir ?? tmpdir(), 'vmforge-grub-'));
  let core: Buffer;
  try {
    const outFile = join(work, 'core.img');
    await runner.run(grubCoreArgv({ fs: input.fs, outFile, prefix: GRUB_BIOS_PREFIX, moduleDir: grubDir }), {
      signal: input.signal,
      timeoutMs: 60_000,
    });
    core = await readFile(outFile);
  } finally {
    await rm(work, { recursive: true, force: true });
  }

  assertCoreFits({ coreBytes: core.length, coreLba: GRUB_CORE_LBA, firstPartitionLba: input.layout.firstPartitionLba });
  const patchedCore = patchCoreImage(core, GRUB_CORE_LBA);
  const mbr = await readAt(input.diskPath, 0, SECTOR);
  const bootSector = patchBootSector(bootImg, mbr, GRUB_CORE_LBA);

  // core.img first, then sector 0: a crash in between leaves a disk that still has no boot code, not one
  // whose boot code jumps into garbage.
  await writeAt(input.diskPath, GRUB_CORE_LBA * SECTOR, patchedCore);
  await writeAt(input.diskPath, 0, bootSector);

  // Through GuestRoot: a template whose /boot or /boot/grub is a symlink must not make us write outside the guest.
  const guest = new GuestRoot(input.rootMountDir);
  await guest.mkdirp(`${GUEST_GRUB_DIR}/i386-pc`);
  const files = (await readdir(grubDir)).filter((f) => f.endsWith('.mod') || f.endsWith('.lst'));
  for (const f of files) await guest.writeFile(`${GUEST_GRUB_DIR}/i386-pc/${f}`, await readFile(join(grubDir, f)));
  await guest.writeText(`${GUEST_GRUB_DIR}/grub.cfg`, input.grubCfgText);

  return { coreSectors: patchedCore.length / SECTOR, modulesCopied: files.length };
}
