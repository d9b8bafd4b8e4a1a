/**
 * Giving a cloned filesystem its own UUID, unmounted: clones of one golden image would otherwise share it, and
 * fstab, grub.cfg (`search --fs-uuid`) and the kernel's root=UUID= could pick the wrong disk when two are seen.
 */
import { assertUuid } from '../../core/disk/uuid.js';
import type { FsType } from '../../core/model/spec.js';
import type { CommandRunner } from '../runner.js';

export function setFsUuidArgv(input: { fs: FsType; device: string; uuid: string }): string[] {
  assertUuid(input.uuid, 'filesystem UUID');
  // tune2fs -U wants a checked filesystem (done once in the golden; the grow step re-checks an unchecked one)
  // and, without metadata_csum_seed, rewrites every metadata checksum; xfs_admin wants a clean log.
  return input.fs === 'xfs' ? ['xfs_admin', '-U', input.uuid, input.device] : ['tune2fs', '-U', input.uuid, input.device];
}

export async function setFsUuid(runner: CommandRunner, input: { fs: FsType; device: string; uuid: string; signal?: AbortSignal }): Promise<void> {
  await runner.run(setFsUuidArgv(input), { signal: input.signal, timeoutMs: 5 * 60_000 });
}
