/**
 * Growing a golden image's layout to a clone's disk size. A golden image has vmforge's layout (planDiskLayout):
 * root at 1 MiB, then optionally swap at the end of the disk. The clone gets the layout planDiskLayout would
 * give the larger disk: root keeps its start and grows, swap is laid out anew at the end. Swap content is
 * disposable, so a swap that moved (or is new) is simply recreated with mkswap (the caller passes the golden's
 * swap UUID to keep fstab valid); the root filesystem is then grown to its partition (resize2fs/xfs_growfs).
 * The clone's swap size may differ from the golden's, so the golden key need not include it.
 */
import { invalidInput } from '../../errors.js';
import type { FsType } from '../model/spec.js';
import { formatSize } from '../units.js';
import { planDiskLayout, rootPartition, SECTOR_SIZE, swapPartition, type DiskLayout, type PartitionPlan } from './layout.js';
import { mbrBytes, MBR_BOOT_SIGNATURE_OFFSET, MBR_PARTITION_TABLE_OFFSET } from './mbr.js';
import { layoutFromMbr, parseMbr } from './mbr-read.js';

export type SwapChange = 'none' | 'kept' | 'moved' | 'created' | 'removed';

export interface GrowInput {
  golden: DiskLayout;
  targetDiskBytes: number;
  /** The clone's swap size; default the golden's (0 when it has none). */
  swapBytes?: number;
  fs?: FsType;
}

export interface GrowPlan {
  layout: DiskLayout;
  root: { index: number; offsetBytes: number; oldSizeBytes: number; newSizeBytes: number };
  /** The root partition got larger: its filesystem must be grown to fill it. */
  rootGrows: boolean;
  swap: SwapChange;
  /** The swap partition to (re)make with mkswap, when its old content is not at its new place. */
  mkswap: PartitionPlan | null;
}

export function planGrow(input: GrowInput): GrowPlan {
  const { golden, targetDiskBytes } = input;
  const oldRoot = rootPartition(golden);
  const oldSwap = swapPartition(golden);
  if (targetDiskBytes < golden.diskBytes) {
    throw invalidInput(
      `disk of ${formatSize(targetDiskBytes)} is smaller than its golden image (${formatSize(golden.diskBytes)})`,
      'give the VM a disk at least as large as the golden image, or build it without a clone',
    );
  }
  if (oldSwap && oldSwap.offsetBytes < oldRoot.offsetBytes) {
    throw invalidInput('the golden image has swap before the root partition; only root-then-swap layouts can be grown');
  }
  const swapBytes = input.swapBytes ?? oldSwap?.sizeBytes ?? 0;
  const layout = planDiskLayout({ diskBytes: targetDiskBytes, swapBytes, fs: input.fs });
  const newRoot = rootPartition(layout);
  const newSwap = swapPartition(layout);
  if (newRoot.index !== oldRoot.index || newRoot.offsetBytes !== oldRoot.offsetBytes) {
    throw invalidInput(
      `the golden image's root is partition ${oldRoot.index} at ${oldRoot.offsetBytes} bytes; a grown layout puts it at partition ${newRoot.index}, ${newRoot.offsetBytes} bytes`,
      'rebuild the golden image with this vmforge version',
    );
  }
  if (newRoot.sizeBytes < oldRoot.sizeBytes) {
    throw invalidInput(
      `a ${formatSize(targetDiskBytes)} disk with ${formatSize(swapBytes)} swap leaves ${formatSize(newRoot.sizeBytes)} for root, less than the golden image's ${formatSize(oldRoot.sizeBytes)}`,
      'make the disk larger or the swap smaller',
    );
  }
  let swap: SwapChange;
  if (!oldSwap) swap = newSwap ? 'created' : 'none';
  else if (!newSwap) swap = 'removed';
  else swap = newSwap.offsetBytes === oldSwap.offsetBytes && newSwap.sizeBytes === oldSwap.sizeBytes ? 'kept' : 'moved';
  return {
    layout,
    root: { index: newRoot.index, offsetBytes: newRoot.offsetBytes, oldSizeBytes: oldRoot.sizeBytes, newSizeBytes: newRoot.sizeBytes },
    rootGrows: newRoot.sizeBytes > oldRoot.sizeBytes,
    swap,
    mkswap: swap === 'moved' || swap === 'created' ? (newSwap ?? null) : null,
  };
}

/**
 * The clone's first sector: the golden's with only the partition table replaced, so GRUB's boot.img (boot code
 * area) and the disk signature stay as the golden image had them.
 */
export function grownMbr(goldenSector: Uint8Array, plan: GrowPlan): Buffer {
  const { diskSignature } = parseMbr(goldenSector);
  const out = Buffer.from(Uint8Array.prototype.slice.call(goldenSector, 0, SECTOR_SIZE));
  mbrBytes(plan.layout, diskSignature).copy(out, MBR_PARTITION_TABLE_OFFSET, MBR_PARTITION_TABLE_OFFSET, MBR_BOOT_SIGNATURE_OFFSET);
  return out;
}

/** Both steps from the golden's first sector and size: the plan and the sector to write at byte 0 of the clone. */
export function growGoldenMbr(input: {
  goldenSector: Uint8Array;
  goldenDiskBytes: number;
  targetDiskBytes: number;
  swapBytes?: number;
  fs?: FsType;
}): { plan: GrowPlan; mbr: Buffer } {
  const golden = layoutFromMbr(input.goldenSector, input.goldenDiskBytes);
  const plan = planGrow({ golden, targetDiskBytes: input.targetDiskBytes, swapBytes: input.swapBytes, fs: input.fs });
  return { plan, mbr: grownMbr(input.goldenSector, plan) };
}
