/**
 * Partition layout of a VM disk: an MBR label with the root filesystem first (bootable) and an optional swap
 * partition at the end, every boundary on 1 MiB. The gap before the first partition holds GRUB's core.img.
 */
import { invalidInput } from '../../errors.js';
import type { FsType } from '../model/spec.js';
import { formatSize, MiB } from '../units.js';

export const SECTOR_SIZE = 512;
export const ALIGN_BYTES = MiB;
export const PARTITION_TYPE_LINUX = 0x83;
export const PARTITION_TYPE_SWAP = 0x82;

/** MBR entries hold 32-bit sector numbers; beyond this the label cannot describe the disk. */
export const MBR_MAX_DISK_BYTES = 2 ** 32 * SECTOR_SIZE;

/**
 * Smallest root partition accepted. mkfs.xfs (xfsprogs >= 5.19) refuses filesystems under 300 MiB; for ext4
 * the floor only keeps obviously useless disks out.
 */
export const MIN_ROOT_BYTES: Record<FsType, number> = { ext4: 64 * MiB, xfs: 300 * MiB };

export type PartitionRole = 'root' | 'swap';

export interface PartitionPlan {
  /** MBR slot, 1-based; also the N in /dev/xxxN and (hd0,msdosN). */
  index: number;
  role: PartitionRole;
  /** MBR partition type byte. */
  type: number;
  bootable: boolean;
  startLba: number;
  sectors: number;
  offsetBytes: number;
  sizeBytes: number;
}

export interface DiskLayout {
  diskBytes: number;
  sectorSize: typeof SECTOR_SIZE;
  totalSectors: number;
  /** First sector of the first partition: sectors 1 .. firstPartitionLba-1 are free for a boot loader. */
  firstPartitionLba: number;
  partitions: PartitionPlan[];
}

export interface DiskLayoutInput {
  diskBytes: number;
  swapBytes: number;
  /** Root filesystem, when known: raises the minimum root size to what its mkfs accepts. */
  fs?: FsType;
}

export function planDiskLayout(input: DiskLayoutInput): DiskLayout {
  const { diskBytes, swapBytes } = input;
  const minRoot = MIN_ROOT_BYTES[input.fs ?? 'ext4'];

  if (!Number.isSafeInteger(diskBytes) || diskBytes <= 0) {
    throw invalidInput(`disk size ${String(diskBytes)} is not a positive whole number of bytes`, 'give the disk size like 4G');
  }
  if (diskBytes % SECTOR_SIZE !== 0) {
    throw invalidInput(`disk size ${diskBytes} bytes is not a multiple of the ${SECTOR_SIZE}-byte sector`, 'give the disk size in MiB or GiB, like 4G');
  }
  if (diskBytes > MBR_MAX_DISK_BYTES) {
    throw invalidInput(
      `disk size ${formatSize(diskBytes)} is larger than an MBR partition table can address (${formatSize(MBR_MAX_DISK_BYTES)})`,
      'use a disk of 2 TiB or less',
    );
  }
  if (!Number.isSafeInteger(swapBytes) || swapBytes < 0) {
    throw invalidInput(`swap size ${String(swapBytes)} is not a whole number of bytes >= 0`, 'give the swap size like 512M, or 0 for no swap');
  }
  if (swapBytes >= diskBytes) {
    throw invalidInput(
      `swap size ${formatSize(swapBytes)} is not smaller than the disk (${formatSize(diskBytes)})`,
      'make the disk larger or the swap smaller',
    );
  }

  const usableEnd = Math.floor(diskBytes / ALIGN_BYTES) * ALIGN_BYTES;
  const swapSize = Math.ceil(swapBytes / ALIGN_BYTES) * ALIGN_BYTES;
  const rootStart = ALIGN_BYTES;
  const rootEnd = usableEnd - swapSize;
  const rootSize = rootEnd - rootStart;
  if (rootSize < minRoot) {
    const needed = rootStart + minRoot + swapSize;
    throw invalidInput(
      `disk of ${formatSize(diskBytes)} leaves ${formatSize(Math.max(rootSize, 0))} for the root filesystem; at least ${formatSize(minRoot)} is needed`,
      `make the disk at least ${formatSize(needed)}${swapSize > 0 ? ' or the swap smaller' : ''}`,
    );
  }

  const partitions: PartitionPlan[] = [part(1, 'root', rootStart, rootSize)];
  if (swapSize > 0) partitions.push(part(2, 'swap', rootEnd, swapSize));
  return {
    diskBytes,
    sectorSize: SECTOR_SIZE,
    totalSectors: diskBytes / SECTOR_SIZE,
    firstPartitionLba: rootStart / SECTOR_SIZE,
    partitions,
  };
}

function part(index: number, role: PartitionRole, offsetBytes: number, sizeBytes: number): PartitionPlan {
  return {
    index,
    role,
    type: role === 'root' ? PARTITION_TYPE_LINUX : PARTITION_TYPE_SWAP,
    bootable: role === 'root',
    startLba: offsetBytes / SECTOR_SIZE,
    sectors: sizeBytes / SECTOR_SIZE,
    offsetBytes,
    sizeBytes,
  };
}

export function rootPartition(layout: DiskLayout): PartitionPlan {
  const p = layout.partitions.find((x) => x.role === 'root');
  if (!p) throw invalidInput('disk layout has no root partition');
  return p;
}

export function swapPartition(layout: DiskLayout): PartitionPlan | undefined {
  return layout.partitions.find((x) => x.role === 'swap');
}
