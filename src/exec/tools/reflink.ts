/**
 * Copy-on-write file copies (FICLONE through `cp --reflink=always`; Node has no ioctl). On xfs with reflink=1 or
 * btrfs a clone of a multi-GiB golden image shares every extent and takes milliseconds; elsewhere it fails
 * instead of silently copying every byte, so the caller can choose another strategy.
 *
 * GNU cp refuses `--reflink` together with `--sparse=always`; holes survive a clone anyway, since only extents
 * are shared.
 */
import { lstat, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { conflict, VmforgeError } from '../../errors.js';
import type { CommandRunner } from '../runner.js';

/** What cp prints when the filesystem (or the pair of them) cannot share extents. */
const UNSUPPORTED = /Operation not supported|Invalid cross-device link|Inappropriate ioctl|Invalid argument|not supported/i;

export function reflinkArgv(src: string, dst: string): string[] {
  // --no-target-directory: an existing directory at dst must be an error, not a place to copy into.
  return ['cp', '--reflink=always', '--no-target-directory', '--', src, dst];
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Clones `src` to `dst` (which must not exist). Throws CONFLICT when dst exists, COMMAND_FAILED with a hint when
 * the filesystem cannot clone; a partly made dst is removed.
 */
export async function reflinkCopy(runner: CommandRunner, src: string, dst: string, opts: { signal?: AbortSignal } = {}): Promise<{ path: string }> {
  if (await exists(dst)) throw conflict(`${dst} already exists`, 'remove it or choose another name');
  try {
    await runner.run(reflinkArgv(src, dst), { signal: opts.signal, timeoutMs: 10 * 60_000 });
  } catch (e) {
    await rm(dst, { force: true });
    if (e instanceof VmforgeError && e.code === 'COMMAND_FAILED' && UNSUPPORTED.test(e.message)) {
      throw new VmforgeError('COMMAND_FAILED', `cannot reflink ${src} to ${dst}: ${e.message}`, {
        hint: 'keep images on xfs (mkfs.xfs -m reflink=1) or btrfs, in one filesystem, or use the qcow2 clone strategy',
        cause: e,
      });
    }
    throw e;
  }
  return { path: dst };
}

/** Whether files in `dir` can be cloned there, by cloning a tiny probe file. */
export async function supportsReflink(runner: CommandRunner, dir: string): Promise<boolean> {
  const probe = await mkdtemp(join(dir, '.vmforge-reflink-probe-'));
  try {
    // A clone needs at least one real extent to share: a sparse file would prove nothing on some filesystems.
    await writeFile(join(probe, 'a'), Buffer.alloc(4096, 0x5a));
    try {
      await runner.run(reflinkArgv(join(probe, 'a'), join(probe, 'b')), { timeoutMs: 60_000 });
      return true;
    } catch (e) {
      if (e instanceof VmforgeError && e.code === 'COMMAND_FAILED' && UNSUPPORTED.test(e.message)) return false;
      throw e;
    }
  } finally {
    await rm(probe, { recursive: true, force: true });
  }
}
