/**
 * Growing a clone's root filesystem to its (grown) partition. ext4 grows offline (e2fsck -f, which resize2fs
 * demands, then resize2fs) or online once mounted; xfs only grows mounted (xfs_growfs takes the mount point).
 */
import type { FsType } from '../../core/model/spec.js';
import { VmforgeError } from '../../errors.js';
import type { CommandRunner } from '../runner.js';

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
    // 1 = errors fixed: acceptable for a golden image that was unmounted cleanly but is checked with -f.
    await runner.run(['e2fsck', '-f', '-y', input.device], { ...opts, okCodes: [1] });
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
