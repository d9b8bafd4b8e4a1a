/**
 * A BIOS (i386-pc) GRUB install done from the host, without grub-install, without chroot and without a loop
 * device for the whole disk: grub-mkimage builds core.img, and these functions do what grub-bios-setup
 * (grub util/setup.c) does when it embeds core.img in the MBR gap of an msdos-labelled disk:
 *
 *  - boot.img goes into sector 0, keeping the disk's BPB area, disk signature, partition table and 0x55AA;
 *    its "kernel sector" field points at core.img's first sector, and the boot-drive check jump is nopped.
 *  - core.img goes into sectors coreLba.., and the blocklist at the end of its first sector (diskboot.img)
 *    tells diskboot where the remaining sectors are and where in memory to load them.
 *
 * Offsets are from grub include/grub/i386/pc/boot.h and grub-core/boot/i386/pc/{boot,diskboot}.S (2.06).
 * Like `grub-install --no-rs-codes`, no Reed-Solomon redundancy is appended (its field stays 0, so the
 * startup code skips recovery).
 */
import { invalidInput, VmforgeError } from '../../errors.js';
import type { FsType } from '../model/spec.js';
import { assertUuid } from '../disk/uuid.js';

export const SECTOR = 512;
export const GRUB_I386_PC_DIR = '/usr/lib/grub/i386-pc';
/** Where core.img finds its modules and grub.cfg: /boot/grub on the first (root) msdos partition. */
export const GRUB_BIOS_PREFIX = '(hd0,msdos1)/boot/grub';
/** core.img starts right after the MBR, as grub-bios-setup embeds it on msdos disks. */
export const GRUB_CORE_LBA = 1;

// boot.img (boot.S)
const BPB_START = 0x03;
const BPB_END = 0x5a;
const KERNEL_SECTOR = 0x5c;
const BOOT_DRIVE = 0x64;
const DRIVE_CHECK = 0x66;
/** From here to 0x1fe the sector belongs to the disk (NT signature + partition table), not to boot.img. */
const WINDOWS_NT_MAGIC = 0x1b8;
const PART_END = 0x1fe;
const JMP_SHORT = 0xeb;
const NOP = 0x90;

// diskboot.img (diskboot.S): blocklist entries {u64 start, u16 len, u16 segment}, growing down from 0x200.
const BLOCKLIST_SIZE = 12;
const FIRST_BLOCKLIST = SECTOR - BLOCKLIST_SIZE;
/** GRUB_BOOT_I386_PC_KERNEL_SEG (0x800) + one sector: diskboot sits at 0x8000, the rest loads at 0x8200. */
const CORE_REST_SEGMENT = 0x820;
/** grub-bios-setup caps core.img at (0x78000 - GRUB_KERNEL_I386_PC_LINK_ADDR 0x9000) / 512 sectors. */
export const GRUB_CORE_MAX_SECTORS = (0x78000 - 0x9000) / SECTOR;

const FS_MODULE: Record<FsType, string> = { ext4: 'ext2', xfs: 'xfs' };

/**
 * Modules built into core.img: just enough to read /boot/grub from the root partition via the BIOS. Everything
 * else (normal, linux, serial, search, echo, halt...) is loaded from the prefix on demand via command.lst.
 */
export function grubCoreModules(fs: FsType): string[] {
  return ['biosdisk', 'part_msdos', FS_MODULE[fs]];
}

export interface GrubCoreArgvInput {
  fs: FsType;
  outFile: string;
  prefix: string;
  /** Directory with the i386-pc modules and images; the same one the .mod files are copied from. */
  moduleDir?: string;
}

export function grubCoreArgv(input: GrubCoreArgvInput): string[] {
  if (!input.outFile.startsWith('/')) throw invalidInput(`core.img path '${input.outFile}' is not absolute`);
  if (!/^\([a-z0-9,]+\)(\/[A-Za-z0-9._-]+)+$/.test(input.prefix)) {
    throw invalidInput(`GRUB prefix '${input.prefix}' is not of the form (hd0,msdos1)/boot/grub`);
  }
  const dir = input.moduleDir ?? GRUB_I386_PC_DIR;
  return ['grub-mkimage', '-O', 'i386-pc', '-d', dir, '-o', input.outFile, '-p', input.prefix, ...grubCoreModules(input.fs)];
}

function hasBootSignature(b: Buffer): boolean {
  return b[PART_END] === 0x55 && b[PART_END + 1] === 0xaa;
}

function assertCoreLba(coreLba: number): void {
  if (!Number.isInteger(coreLba) || coreLba < 1 || coreLba > 0xffffffff) {
    throw invalidInput(`core.img sector ${String(coreLba)} must be a whole number >= 1 (sector 0 is the MBR)`);
  }
}

/**
 * Sector 0 of the disk with GRUB's boot code: boot.img's code, the disk's own BPB area and everything from
 * the NT disk signature on (partition table, 0x55AA).
 */
export function patchBootSector(bootImg: Buffer, existingMbr: Buffer, coreLba: number): Buffer {
  assertCoreLba(coreLba);
  if (bootImg.length !== SECTOR || !hasBootSignature(bootImg)) {
    throw invalidInput(`boot.img must be one ${SECTOR}-byte sector ending in 0x55AA (got ${bootImg.length} bytes)`);
  }
  const check = bootImg[DRIVE_CHECK];
  if (check !== JMP_SHORT && check !== NOP) {
    throw invalidInput(`boot.img has 0x${(check ?? 0).toString(16)} at the boot drive check (0x66); it is not GRUB 2's i386-pc boot.img`);
  }
  if (existingMbr.length !== SECTOR || !hasBootSignature(existingMbr)) {
    throw invalidInput('the disk has no MBR partition table (sector 0 does not end in 0x55AA)', 'write the partition table before installing GRUB');
  }
  const out = Buffer.from(bootImg);
  existingMbr.copy(out, BPB_START, BPB_START, BPB_END);
  existingMbr.copy(out, WINDOWS_NT_MAGIC, WINDOWS_NT_MAGIC, PART_END);
  out.writeBigUInt64LE(BigInt(coreLba), KERNEL_SECTOR);
  // 0xFF = trust the drive number the BIOS passes in DL.
  out[BOOT_DRIVE] = 0xff;
  // Nopping the jump enables boot.S's fallback to drive 0x80 when a buggy BIOS passes a floppy number.
  out[DRIVE_CHECK] = NOP;
  out[DRIVE_CHECK + 1] = NOP;
  return out;
}

/** Sectors core.img occupies on disk (rounded up). */
export function coreSectors(coreBytes: number): number {
  return Math.ceil(coreBytes / SECTOR);
}

/** core.img must end before the first partition starts, and stay under what diskboot can load. */
export function assertCoreFits(input: { coreBytes: number; coreLba: number; firstPartitionLba: number }): void {
  assertCoreLba(input.coreLba);
  const sectors = coreSectors(input.coreBytes);
  const gap = input.firstPartitionLba - input.coreLba;
  if (sectors > gap) {
    throw new VmforgeError(
      'INSUFFICIENT_SPACE',
      `GRUB core.img needs ${sectors} sectors but only ${Math.max(gap, 0)} are free between sector ${input.coreLba} and the first partition (sector ${input.firstPartitionLba})`,
      { hint: 'start the first partition at 1 MiB (sector 2048) or later' },
    );
  }
  if (sectors > GRUB_CORE_MAX_SECTORS) {
    throw new VmforgeError('INSUFFICIENT_SPACE', `GRUB core.img is ${sectors} sectors; diskboot loads at most ${GRUB_CORE_MAX_SECTORS}`, {
      hint: 'build core.img with fewer modules',
    });
  }
}

/**
 * core.img padded to whole sectors, with diskboot's blocklist saying: the other sectors-1 sectors follow
 * contiguously at coreLba+1, load them at segment 0x820. The entry below it is the zero terminator.
 */
export function patchCoreImage(core: Buffer, coreLba: number): Buffer {
  assertCoreLba(coreLba);
  if (core.length < 2 * SECTOR) throw invalidInput(`core.img is ${core.length} bytes; a GRUB i386-pc core.img is at least 2 sectors`);
  const sectors = coreSectors(core.length);
  if (sectors > 0xffff) throw invalidInput(`core.img is ${sectors} sectors; a blocklist length is 16 bits`);

  const out = Buffer.alloc(sectors * SECTOR);
  core.copy(out);
  // A fresh core.img carries diskboot.S's defaults (start 2, len 0, segment 0x820); an installed one has len != 0.
  if (out.readUInt16LE(FIRST_BLOCKLIST + 10) !== CORE_REST_SEGMENT) {
    throw invalidInput('core.img does not start with diskboot.img (no blocklist at the end of its first sector)', 'build it with grub-mkimage -O i386-pc');
  }
  // Clear blocklists left by an earlier install, as grub-bios-setup does, down to the terminator.
  for (let at = FIRST_BLOCKLIST; out.readUInt16LE(at + 8) !== 0; at -= BLOCKLIST_SIZE) {
    if (at - BLOCKLIST_SIZE <= 0) throw invalidInput('core.img has no blocklist terminator');
    out.fill(0, at, at + BLOCKLIST_SIZE);
  }
  out.writeBigUInt64LE(BigInt(coreLba + 1), FIRST_BLOCKLIST);
  out.writeUInt16LE(sectors - 1, FIRST_BLOCKLIST + 8);
  out.writeUInt16LE(CORE_REST_SEGMENT, FIRST_BLOCKLIST + 10);
  out.fill(0, FIRST_BLOCKLIST - BLOCKLIST_SIZE, FIRST_BLOCKLIST);
  return out;
}

export interface GrubCfgInput {
  rootUuid: string;
  fs: FsType;
  /** Absolute path inside the root filesystem; prefer /vmlinuz, which the kernel package keeps current. */
  kernel: string;
  initrd?: string;
  /** Extra kernel arguments; root=UUID=... ro is added here. */
  cmdline: string;
  title: string;
}

const GUEST_PATH_RE = /^(\/[A-Za-z0-9._+-]+)+$/;
/** Characters with no meaning in GRUB script, so the kernel line needs no quoting. */
const CMDLINE_RE = /^[A-Za-z0-9 ._,:=+\-/@%]*$/;

export function grubCfg(input: GrubCfgInput): string {
  assertUuid(input.rootUuid, 'root filesystem UUID');
  for (const [what, path] of [['kernel', input.kernel], ['initrd', input.initrd]] as const) {
    if (path === undefined) continue;
    if (!GUEST_PATH_RE.test(path) || path.split('/').includes('..')) {
      throw invalidInput(`${what} path '${path}' is not a plain absolute path`, 'use a path like /vmlinuz or /boot/vmlinuz-6.1.0-13-amd64');
    }
  }
  if (!CMDLINE_RE.test(input.cmdline)) {
    throw invalidInput(`kernel command line '${input.cmdline}' contains characters GRUB would interpret`, 'use letters, digits, spaces and . _ , : = + - / @ %');
  }
  if (/(^|\s)root=/.test(input.cmdline)) {
    throw invalidInput('kernel command line must not set root=', 'the root filesystem is passed as root=UUID=... automatically');
  }
  if (/[\n\r]/.test(input.title) || input.title.trim() === '') throw invalidInput('menu title must be one non-empty line');

  const args = ['root=UUID=' + input.rootUuid, 'ro', ...input.cmdline.split(/\s+/).filter(Boolean)].join(' ');
  const title = `'${input.title.replaceAll("'", "'\\''")}'`;
  const lines = [
    '# GRUB configuration written by vmforge.',
    'serial --unit=0 --speed=115200',
    'terminal_input serial console',
    'terminal_output serial console',
    'set default=0',
    'set timeout=0',
    'insmod part_msdos',
    `insmod ${FS_MODULE[input.fs]}`,
    `search --no-floppy --fs-uuid --set=root ${input.rootUuid}`,
    `menuentry ${title} {`,
    `\tlinux ${input.kernel} ${args}`,
    ...(input.initrd === undefined ? [] : [`\tinitrd ${input.initrd}`]),
    '}',
  ];
  return `${lines.join('\n')}\n`;
}
