/**
 * Golden images (issue #6): one raw disk per bundle content + root fs + layout version + boot mode, made by the
 * cold path's disk steps with no per-VM edits, and cloned for each VM (qcow2 overlay or reflink copy). Pure.
 */
import type { Manifest } from '../../bundles/manifest.js';
import { grubCfg } from '../boot/grub-bios.js';
import { MIN_ROOT_BYTES, planDiskLayout, type DiskLayout } from '../disk/layout.js';
import type { FsType } from '../model/spec.js';
import { MiB } from '../units.js';
import { KERNEL_CMDLINE, minimumRootBytes } from './build-plan.js';

/** Bump when planDiskLayout's shape changes: planGrow relies on root at 1 MiB in partition 1, swap after it. */
export const GOLDEN_LAYOUT_VERSION = 1;
/** What is installed in the golden: GRUB i386-pc in the MBR gap, prefix (hd0,msdos1)/boot/grub. */
export const GOLDEN_BOOT_MODE = 'bios';
/**
 * Bump when what the golden's bytes hold changes for the same bundle, fs, layout and boot mode, so older
 * images are not reused. 2: ext4 with 4 KiB blocks and metadata_csum_seed, e2fsck'ed after it is made.
 */
export const GOLDEN_FORMAT_VERSION = 2;
/** mkfs.ext4 options of a golden's root (see MkfsInput.ext4); GRUB 2.06 (Debian 12) reads metadata_csum_seed. */
export const GOLDEN_EXT4 = { usageType: 'default', features: ['metadata_csum_seed'] } as const;

export type CloneStrategy = 'qcow2' | 'reflink';
export type CloneSetting = 'auto' | CloneStrategy | 'off';

/** File-name-safe key: everything the golden's bytes depend on (not the VM's disk or swap size). */
export function goldenKey(input: { bundleSha256: string; fs: FsType }): string {
  if (!/^[0-9a-f]{64}$/.test(input.bundleSha256)) throw new Error(`bundle sha256 '${input.bundleSha256}' is not 64 hex digits`);
  return `${input.bundleSha256}-${input.fs}-l${GOLDEN_LAYOUT_VERSION}-${GOLDEN_BOOT_MODE}-f${GOLDEN_FORMAT_VERSION}`;
}

export interface GoldenPlan {
  key: string;
  /** Root only, just large enough for the bundle: every clone grows it and adds its own swap. */
  layout: DiskLayout;
  rootFsUuid: string;
  diskSignature: number;
  grubCfg: string;
}

/**
 * The golden's disk is the smallest root any VM of this bundle may have (requireDiskFitsBundle's bound, on
 * 1 MiB), so planGrow never has to shrink it. No swap: clones place theirs at the end of their own disk.
 */
export function planGolden(input: { manifest: Manifest; fs: FsType; rootFsUuid: string; diskSignature: number }): GoldenPlan {
  const { manifest, fs } = input;
  const rootBytes = Math.max(Math.ceil(minimumRootBytes(manifest.unpackedBytes) / MiB) * MiB, MIN_ROOT_BYTES[fs]);
  const layout = planDiskLayout({ diskBytes: rootBytes + MiB, swapBytes: 0, fs });
  const kernel = manifest.kernels[0];
  if (!kernel) throw new Error(`bundle ${manifest.name}:${manifest.version} has no kernel`);
  return {
    key: goldenKey({ bundleSha256: manifest.sha256, fs }),
    layout,
    rootFsUuid: input.rootFsUuid,
    diskSignature: input.diskSignature,
    grubCfg: grubCfg({
      rootUuid: input.rootFsUuid,
      fs,
      kernel: kernel.kernel,
      ...(kernel.initrd ? { initrd: kernel.initrd } : {}),
      cmdline: KERNEL_CMDLINE,
      title: `${manifest.os.prettyName} (vmforge golden image)`,
    }),
  };
}
