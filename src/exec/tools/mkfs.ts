/**
 * Filesystems and swap on block devices. The UUID is chosen by the caller (core/disk/uuid.ts) and passed to
 * the tool, so fstab/grub.cfg can use it without asking blkid afterwards.
 */
import { assertUuid } from '../../core/disk/uuid.js';
import { invalidInput } from '../../errors.js';
import type { FsType } from '../../core/model/spec.js';
import type { CommandRunner } from '../runner.js';

export interface MkfsInput {
  device: string;
  fs: FsType;
  uuid: string;
  label?: string;
  /**
   * ext4 only: mke2fs usage type (-T) and extra features (-O). Golden images use `default` (4 KiB blocks, as a
   * multi-GiB disk gets, instead of the 1 KiB blocks mke2fs picks for a small one that clones grow from) and
   * `metadata_csum_seed` (a clone's `tune2fs -U` then writes only the superblock).
   */
  ext4?: { usageType?: 'default'; features?: readonly string[] };
  signal?: AbortSignal;
}

function checkLabel(label: string | undefined, max: number): void {
  if (label === undefined) return;
  if (!/^[A-Za-z0-9._-]+$/.test(label) || label.length > max) {
    throw invalidInput(`filesystem label '${label}' must be 1-${max} characters of letters, digits, . _ -`);
  }
}

/** argv for making `fs` on `device`; exported for tests and --dry-run output. */
export function mkfsArgv(input: Omit<MkfsInput, 'signal'>): string[] {
  assertUuid(input.uuid, 'filesystem UUID');
  switch (input.fs) {
    case 'ext4':
      checkLabel(input.label, 16);
      // Lazy init: mkfs skips zeroing inode tables (the kernel does it in the background once mounted) and
      // the journal (fine on a fresh sparse image, whose unwritten blocks read as zero), so mkfs of a
      // multi-GiB disk takes well under a second instead of writing gigabytes.
      return [
        'mkfs.ext4',
        '-q',
        '-F',
        '-U',
        input.uuid,
        '-E',
        'lazy_itable_init=1,lazy_journal_init=1',
        ...(input.ext4?.usageType ? ['-T', input.ext4.usageType] : []),
        ...(input.ext4?.features?.length ? ['-O', input.ext4.features.join(',')] : []),
        ...(input.label ? ['-L', input.label] : []),
        input.device,
      ];
    case 'xfs':
      checkLabel(input.label, 12);
      return ['mkfs.xfs', '-q', '-f', '-m', `uuid=${input.uuid}`, ...(input.label ? ['-L', input.label] : []), input.device];
  }
}

export async function makeFilesystem(runner: CommandRunner, input: MkfsInput): Promise<{ uuid: string }> {
  await runner.run(mkfsArgv(input), { signal: input.signal, timeoutMs: 10 * 60_000 });
  return { uuid: input.uuid };
}

export function mkswapArgv(input: { device: string; uuid: string; label?: string }): string[] {
  assertUuid(input.uuid, 'swap UUID');
  checkLabel(input.label, 15);
  return ['mkswap', '-U', input.uuid, ...(input.label ? ['-L', input.label] : []), input.device];
}

export async function makeSwap(runner: CommandRunner, input: { device: string; uuid: string; label?: string }): Promise<{ uuid: string }> {
  await runner.run(mkswapArgv(input), { timeoutMs: 60_000 });
  return { uuid: input.uuid };
}
