/**
 * Growing a clone's root filesystem to its (grown) partition. ext4 grows offline (e2fsck -f, which resize2fs
 * demands, then resize2fs) or online once mounted; xfs only grows mounted (xfs_growfs takes the mount point).
 */
import { EXT4_SUPER_BYTES, EXT4_SUPER_OFFSET, parseExt4Super, resizeNeedsCheck } from '../../core/disk/ext4-super.js';
import type { FsType } from '../../core/model/spec.js';
import { VmforgeError } from '../../errors.js';
import type { CommandRunner } from '../runner.js';
import { readAt } from './disk-image.js';

const TOOL_TIMEOUT_MS = 10 * 60_000;

export type GrowFsInput =
  | { fs: 'ext4'; device: string; mountPoint?: undefined; signal?: AbortSignal }
  | { fs: FsType; device: string; mountPoint: string; signal?: AbortSignal };

/** Grows the filesystem on `device` to fill it; with `mountPoint` it must be mounted there (online grow). */
export async function growFilesystem(runner: CommandRunner, input: GrowFsInput): Promise<void> {
  const opts = { signal: input.signal, timeoutMs: TOOL_TIMEOUT_MS };
  if (input.fs === 'xfs') {
    if (!input.mountPoint) throw new VmforgeError('INTERNAL', 'xfs grows only while mounted: pass mountPoint');
    await runner.run(['xfs_growfs', '-d', input.mountPoint], opts);
    return;
  }
  if (input.mountPoint === undefined) {
    // resize2fs demands a fresh e2fsck -f unless the superblock says clean and checked since the last mount;
    // a golden image is checked once when it is made, so its clones skip the check (it reads all metadata).
    const sb = parseExt4Super(await readAt(input.device, EXT4_SUPER_OFFSET, EXT4_SUPER_BYTES));
    if (resizeNeedsCheck(sb)) await checkExt4(runner, input.device, input.signal);
  }
  try {
    await runner.run(['resize2fs', input.device], opts);
  } catch (e) {
    // The kernel's online resize (EXT4_IOC_RESIZE_FS) wants CAP_SYS_RESOURCE, which containers often drop.
    if (input.mountPoint !== undefined && e instanceof VmforgeError && /Permission denied/.test(e.message)) {
      throw new VmforgeError('COMMAND_FAILED', `online resize of ${input.device} was refused: ${e.message}`, {
        hint: 'online ext4 resize needs CAP_SYS_RESOURCE; grow it unmounted instead (e2fsck -f, then resize2fs)',
        cause: e,
      });
    }
    throw e;
  }
}

/** `e2fsck -f -y`: what resize2fs and tune2fs want before they change an unmounted filesystem. */
export async function checkExt4(runner: CommandRunner, device: string, signal?: AbortSignal): Promise<void> {
  // 1 = errors fixed: acceptable for a golden image that was unmounted cleanly but is checked with -f.
  await runner.run(['e2fsck', '-f', '-y', device], { signal, timeoutMs: TOOL_TIMEOUT_MS, okCodes: [1] });
}
