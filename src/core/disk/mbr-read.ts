/**
 * Reading back an MBR that mbrBytes wrote (a golden image's), as a DiskLayout: partition type 0x83 is the root,
 * 0x82 the swap. Anything else (extended partitions, GPT protective entries, two roots) is refused rather than
 * guessed at, since the result decides where a filesystem is grown.
 */
import { invalidInput } from '../../errors.js';
import { PARTITION_TYPE_LINUX, PARTITION_TYPE_SWAP, SECTOR_SIZE, type DiskLayout, type PartitionPlan } from './layout.js';
import { MBR_BOOT_SIGNATURE_OFFSET, MBR_DISK_SIGNATURE_OFFSET, MBR_PARTITION_ENTRY_SIZE, MBR_PARTITION_TABLE_OFFSET } from './mbr.js';

export interface MbrEntry {
  index: number;
  type: number;
  bootable: boolean;
  startLba: number;
  sectors: number;
}

export interface ParsedMbr {
  diskSignature: number;
  entries: MbrEntry[];
}

export function parseMbr(sector: Uint8Array): ParsedMbr {
  if (sector.length < SECTOR_SIZE) throw invalidInput(`an MBR is ${SECTOR_SIZE} bytes, got ${sector.length}`);
  const buf = Buffer.from(sector.buffer, sector.byteOffset, SECTOR_SIZE);
  if (buf[MBR_BOOT_SIGNATURE_OFFSET] !== 0x55 || buf[MBR_BOOT_SIGNATURE_OFFSET + 1] !== 0xaa) {
    throw invalidInput('the first sector has no MBR boot signature (55 AA)');
  }
  const entries: MbrEntry[] = [];
  for (let i = 0; i < 4; i++) {
    const at = MBR_PARTITION_TABLE_OFFSET + i * MBR_PARTITION_ENTRY_SIZE;
    const type = buf[at + 4] ?? 0;
    if (type === 0) continue;
    entries.push({
      index: i + 1,
      type,
      bootable: buf[at] === 0x80,
      startLba: buf.readUInt32LE(at + 8),
      sectors: buf.readUInt32LE(at + 12),
    });
  }
  return { diskSignature: buf.readUInt32LE(MBR_DISK_SIGNATURE_OFFSET), entries };
}

/** The layout of a disk of `diskBytes` whose first sector is `sector`. */
export function layoutFromMbr(sector: Uint8Array, diskBytes: number): DiskLayout {
  if (!Number.isSafeInteger(diskBytes) || diskBytes <= 0 || diskBytes % SECTOR_SIZE !== 0) {
    throw invalidInput(`disk size ${String(diskBytes)} is not a positive multiple of ${SECTOR_SIZE} bytes`);
  }
  const { entries } = parseMbr(sector);
  const totalSectors = diskBytes / SECTOR_SIZE;
  const partitions: PartitionPlan[] = entries.map((e) => {
    const role = e.type === PARTITION_TYPE_LINUX ? 'root' : e.type === PARTITION_TYPE_SWAP ? 'swap' : null;
    if (role === null) throw invalidInput(`partition ${e.index} has type 0x${e.type.toString(16)}; only 0x83 (root) and 0x82 (swap) are understood`);
    if (e.startLba < 1 || e.sectors < 1 || e.startLba + e.sectors > totalSectors) {
      throw invalidInput(`partition ${e.index} (sectors ${e.startLba}+${e.sectors}) does not fit the disk of ${totalSectors} sectors`);
    }
    return {
      index: e.index,
      role,
      type: e.type,
      bootable: e.bootable,
      startLba: e.startLba,
      sectors: e.sectors,
      offsetBytes: e.startLba * SECTOR_SIZE,
      sizeBytes: e.sectors * SECTOR_SIZE,
    };
  });
  for (const role of ['root', 'swap'] as const) {
    if (partitions.filter((p) => p.role === role).length > 1) throw invalidInput(`the MBR has more than one ${role} partition`);
  }
  if (!partitions.some((p) => p.role === 'root')) throw invalidInput('the MBR has no Linux (0x83) root partition');
  const sorted = [...partitions].sort((a, b) => a.startLba - b.startLba);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1] as PartitionPlan;
    const cur = sorted[i] as PartitionPlan;
    if (prev.startLba + prev.sectors > cur.startLba) throw invalidInput(`partitions ${prev.index} and ${cur.index} overlap`);
  }
  return {
    diskBytes,
    sectorSize: SECTOR_SIZE,
    totalSectors,
    firstPartitionLba: sorted[0]?.startLba ?? 0,
    partitions,
  };
}
