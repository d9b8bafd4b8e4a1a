/**
 * The 512-byte MBR for a DiskLayout: disk signature, four partition slots, 0x55AA. The boot code area stays
 * zero; GRUB's boot.img is patched in later (core/boot/grub-bios.ts).
 */
import { invalidInput } from '../../errors.js';
import { SECTOR_SIZE, type DiskLayout } from './layout.js';

export const MBR_DISK_SIGNATURE_OFFSET = 0x1b8;
export const MBR_PARTITION_TABLE_OFFSET = 0x1be;
export const MBR_PARTITION_ENTRY_SIZE = 16;
export const MBR_BOOT_SIGNATURE_OFFSET = 0x1fe;

/** Geometry every modern tool (sfdisk, fdisk, parted) assumes when it has to fill CHS fields. */
const HEADS = 255;
const SECTORS_PER_TRACK = 63;
const MAX_CYLINDER = 1023;

/**
 * CHS triple as stored in an MBR entry. Sectors past what CHS can reach get the LBA-only marker
 * FE FF FF (1023/254/63), as sfdisk writes it, so our table is byte-identical to sfdisk's.
 */
export function chsBytes(lba: number): [number, number, number] {
  const cylinder = Math.floor(lba / (HEADS * SECTORS_PER_TRACK));
  if (cylinder > MAX_CYLINDER) return [0xfe, 0xff, 0xff];
  const head = Math.floor(lba / SECTORS_PER_TRACK) % HEADS;
  const sector = (lba % SECTORS_PER_TRACK) + 1;
  return [head, sector | ((cylinder >> 2) & 0xc0), cylinder & 0xff];
}

export function mbrBytes(layout: DiskLayout, diskSignature: number): Buffer {
  if (!Number.isInteger(diskSignature) || diskSignature < 0 || diskSignature > 0xffffffff) {
    throw invalidInput(`disk signature ${String(diskSignature)} is not a 32-bit unsigned number`);
  }
  if (layout.partitions.length > 4) throw invalidInput(`an MBR holds 4 primary partitions, the layout has ${layout.partitions.length}`);

  const mbr = Buffer.alloc(SECTOR_SIZE);
  mbr.writeUInt32LE(diskSignature, MBR_DISK_SIGNATURE_OFFSET);
  const seen = new Set<number>();
  for (const p of layout.partitions) {
    if (!Number.isInteger(p.index) || p.index < 1 || p.index > 4 || seen.has(p.index)) {
      throw invalidInput(`partition index ${p.index} is not a free MBR slot 1-4`);
    }
    seen.add(p.index);
    const end = p.startLba + p.sectors;
    if (p.startLba < 1 || p.sectors < 1 || end > layout.totalSectors || end > 2 ** 32) {
      throw invalidInput(`partition ${p.index} (sectors ${p.startLba}+${p.sectors}) does not fit the disk of ${layout.totalSectors} sectors`);
    }
    if (!Number.isInteger(p.type) || p.type < 1 || p.type > 0xff) throw invalidInput(`partition ${p.index} has an invalid type ${p.type}`);

    const at = MBR_PARTITION_TABLE_OFFSET + (p.index - 1) * MBR_PARTITION_ENTRY_SIZE;
    mbr[at] = p.bootable ? 0x80 : 0x00;
    Buffer.from(chsBytes(p.startLba)).copy(mbr, at + 1);
    mbr[at + 4] = p.type;
    Buffer.from(chsBytes(end - 1)).copy(mbr, at + 5);
    mbr.writeUInt32LE(p.startLba, at + 8);
    mbr.writeUInt32LE(p.sectors, at + 12);
  }
  mbr[MBR_BOOT_SIGNATURE_OFFSET] = 0x55;
  mbr[MBR_BOOT_SIGNATURE_OFFSET + 1] = 0xaa;
  return mbr;
}
