/**
 * BIOS GRUB install into a raw disk image file, from the host's GRUB (grub-pc-bin): no chroot, no
 * grub-install, no loop device for the whole disk. Boot code and core.img go into the image file at byte
 * offsets; modules and grub.cfg go into the mounted root filesystem. core.img and the modules come from
 * the same directory, because GRUB refuses modules from a different build.
 */
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
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
import type { CommandRunner } from '../runner.js';
import { readAt, writeAt } from './disk-image.js';

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

  const grubRoot = await realDirInside(input.rootMountDir, ['boot', 'grub']);
  const modDir = await realDirInside(input.rootMountDir, ['boot', 'grub', 'i386-pc']);
  const files = (await readdir(grubDir)).filter((f) => f.endsWith('.mod') || f.endsWith('.lst'));
  for (const f of files) await writeGuestFile(join(modDir, f), await readFile(join(grubDir, f)));
  await writeGuestFile(join(grubRoot, 'grub.cfg'), input.grubCfgText);

  return { coreSectors: patchedCore.length / SECTOR, modulesCopied: files.length };
}

/**
 * root/a/b/..., created where missing, every component a real directory: a template whose /boot or
 * /boot/grub is a symlink must not make us write outside the guest root.
 */
async function realDirInside(root: string, parts: string[]): Promise<string> {
  let dir = root;
  for (const part of parts) {
    dir = join(dir, part);
    await mkdir(dir, { mode: 0o755 }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
    const st = await lstat(dir);
    if (st.isSymbolicLink() || !st.isDirectory()) {
      throw new VmforgeError('UNSAFE_PATH', `${dir} in the guest is not a plain directory`, {
        hint: 'GRUB files are only written into real directories of the guest root',
      });
    }
  }
  return dir;
}

/** Replaces a file in a guest directory; an existing symlink there is refused rather than followed. */
async function writeGuestFile(path: string, data: string | Buffer): Promise<void> {
  const st = await lstat(path).catch(() => null);
  if (st && !st.isFile()) throw new VmforgeError('UNSAFE_PATH', `${path} in the guest is not a regular file`);
  await writeFile(path, data, { mode: 0o644 });
}
