/**
 * O_DIRECT support for the blob writers (batch-appender.ts). A buffered write() of a large blob spends most of
 * its CPU in the kernel copying the user buffer into the page cache (docs/performance.md, repository transfer);
 * an O_DIRECT write lets the disk read the buffer itself. The kernel then wants the file offset, the length and
 * the buffer's memory address aligned. Offsets and lengths are ours to choose (multiples of BLOCK); the address
 * is not: Node gives no alignment guarantee and does not tell the address. So each buffer is allocated BLOCK
 * bytes larger than needed and the subarray offset that works is found by trying O_DIRECT writes to a scratch
 * file until one is not refused (EINVAL). That holds for the buffer's lifetime: a large ArrayBuffer's memory
 * lives outside V8's heap and is never moved.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { VmforgeError } from '../errors.js';

/** File offsets and lengths of O_DIRECT writes are multiples of this (a multiple of any logical block size in use). */
export const BLOCK = 4096;
/** Address steps tried by the probe: allocations are at least 16-byte aligned. */
const PROBE_STEP = 16;
/** The config's `bundles.directIo`. */
export type DirectIoSetting = 'off' | 'on';

/**
 * Overrides `bundles.directIo` when set: 1 forces O_DIRECT on, 0 forces it off (benches and tests switch it
 * without a config file). Off by default: on the test host's virtual disk an O_DIRECT write into newly allocated
 * blocks ran at 25-190 MiB/s (ext4 serializes such writes, one at a time), slower than buffered writes with
 * background writeback, although it needs a tenth of the CPU (docs/performance.md).
 */
export const DIRECT_IO_ENV = 'VMFORGE_DIRECT_IO';

/**
 * Whether received blobs are to be written with O_DIRECT: the environment variable when set, else the config.
 * The only place that reads the variable; the commands pass the answer down (RepoClient, buildRepoServer,
 * BatchAppender.open). A value other than 0 or 1 is refused rather than guessed at.
 */
export function directIoWanted(setting: DirectIoSetting, env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env[DIRECT_IO_ENV]?.trim();
  if (v === undefined || v === '') return setting === 'on';
  if (v === '1') return true;
  if (v === '0') return false;
  throw new VmforgeError('INVALID_INPUT', `${DIRECT_IO_ENV} is '${v}'; expected 1 (O_DIRECT on) or 0 (off)`, {
    hint: `unset ${DIRECT_IO_ENV} to use bundles.directIo from the config (docs/config.md)`,
  });
}

export interface DirectTarget {
  /** The file opened a second time, write-only with O_DIRECT. */
  fh: FileHandle;
  /** Buffers of the asked size whose memory addresses O_DIRECT accepts. */
  bufs: Buffer[];
}

/**
 * Opens `path` for O_DIRECT writes and makes `count` aligned buffers of `size` bytes (a multiple of BLOCK).
 * Undefined when the filesystem refuses O_DIRECT (tmpfs before Linux 6.6, ramfs, some FUSE), when no buffer
 * offset works, or when the probe cannot run: the caller writes buffered then.
 */
export async function openDirect(path: string, count: number, size: number): Promise<DirectTarget | undefined> {
  if (size % BLOCK !== 0) return undefined;
  const bufs = await alignedBuffers(dirname(path), count, size).catch(() => undefined);
  if (!bufs) return undefined;
  try {
    return { fh: await open(path, constants.O_WRONLY | constants.O_DIRECT), bufs };
  } catch (e) {
    if (refused(e)) return undefined;
    throw e;
  }
}

/** Buffers aligned for O_DIRECT on the filesystem of `dir`, found with a scratch file there (removed again). */
async function alignedBuffers(dir: string, count: number, size: number): Promise<Buffer[] | undefined> {
  // Named like the store's temp files, so a sweep after a crash removes it (store.ts sweepTemp).
  const scratch = join(dir, `dioprobe-${process.pid}-${randomBytes(6).toString('hex')}.partial`);
  let fh: FileHandle;
  try {
    fh = await open(scratch, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT, 0o600);
  } catch (e) {
    // Some filesystems (ramfs) create the file and only then refuse the flag.
    await rm(scratch, { force: true });
    if (refused(e)) return undefined;
    throw e;
  }
  try {
    const bufs: Buffer[] = [];
    let hint = 0;
    for (let i = 0; i < count; i++) {
      const raw = Buffer.allocUnsafe(size + BLOCK);
      // The allocator tends to give every large buffer the same offset within its page: try the last one first.
      const off = await probeOffset(fh, raw, hint);
      if (off === undefined) return undefined;
      hint = off;
      bufs.push(raw.subarray(off, off + size));
    }
    return bufs;
  } finally {
    await fh.close().catch(() => undefined);
    await rm(scratch, { force: true });
  }
}

async function probeOffset(fh: FileHandle, raw: Buffer, hint: number): Promise<number | undefined> {
  const tries = [hint];
  for (let off = 0; off < BLOCK; off += PROBE_STEP) if (off !== hint) tries.push(off);
  for (const off of tries) {
    try {
      await fh.write(raw, off, BLOCK, 0);
      return off;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
    }
  }
  return undefined;
}

function refused(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EINVAL' || code === 'EOPNOTSUPP' || code === 'ENOTSUP';
}
