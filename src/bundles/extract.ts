/**
 * extractBundle: blob -> files in a target directory (normally a freshly made filesystem, mounted), as
 * `decompressor | tar -x` joined by an OS pipe. Node streams the blob into the decompressor, which gives progress
 * in compressed bytes and the blob's sha256 for free.
 *
 * Flags, and why:
 * - --numeric-owner --same-owner --same-permissions: ids and modes exactly as archived (the guest's passwd is not
 *   the host's);
 * - --xattrs --xattrs-include=* --acls: all extended attributes, including file capabilities (security.capability,
 *   ping's cap_net_raw) which tar restores only from namespaces it is told to include;
 * - SELinux labels only on request (`selinux: true`): labelling from a non-SELinux host is better left to the
 *   guest's own relabel on first boot;
 * - no --no-overwrite-dir: the archive's './' carries the guest root's owner and mode, which must replace the
 *   mount point's (or a 0700 temp dir's) metadata; the only directories that pre-exist in a new filesystem are the
 *   root and lost+found.
 * GNU tar already keeps members inside the target (each case is checked against GNU tar 1.34 by
 * test/integration/hostile-bundles.test.ts): it strips a leading '/' from member names and hard link targets,
 * refuses members containing '..', and creates symlinks whose target is absolute or contains '..' only after
 * everything else (a placeholder file stands in until then), so no member is written through such a link: a file
 * under it fails with "Not a directory". It does not follow a symlink at the last component either: a member
 * replaces the link. --keep-directory-symlink stays off for the same reason.
 *
 * tar's refusals and a full filesystem become typed errors here (UNSAFE_PATH, INSUFFICIENT_SPACE) rather than
 * a raw COMMAND_FAILED, since they are about the bundle (or the disk size), not about the host.
 */
import { randomBytes } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { open, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline as streamPipeline } from 'node:stream/promises';
import { VmforgeError, invalidInput, notFound } from '../errors.js';
import { requireDiskFitsBundle } from '../core/plan/build-plan.js';
import { formatSize } from '../core/units.js';
import type { HostRunner } from '../exec/runner.js';
import type { Compression } from './manifest.js';
import { decompressArgv } from './tools.js';
import { hashingMeter } from './hash-meter.js';

export interface ExtractProgress {
  compressedBytesRead: number;
  compressedBytesTotal: number;
}

export interface ExtractBundleOptions {
  blobPath: string;
  compression: Compression;
  /** Must exist and be a directory. */
  targetDir: string;
  /** When given, a blob whose sha256 differs fails the extraction (after tar finished: discard the target). */
  expectedSha256?: string;
  /** Restore SELinux labels too (tar --selinux). */
  selinux?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: ExtractProgress) => void;
  /** For messages: 'NAME:VERSION'. */
  bundleRef?: string;
  /** Swap of the disk being built, so an INSUFFICIENT_SPACE hint names a --disk that really fits. */
  swapBytes?: number;
}

export interface ExtractResult {
  compressedBytes: number;
  sha256: string;
}

const PROGRESS_EVERY_BYTES = 4 * 1024 * 1024;
const MAX_TAR_LINES = 200;
/** tar's words when it refused a member that would have landed outside the target or gone through a link. */
const UNSAFE_TAR_LINE = /Member name contains '\.\.'|Cannot hard link to|Cannot open: Not a directory|Cannot (create symlink|mkdir).*Not a directory|Attempt to write through/;
const NO_SPACE_LINE = /No space left on device|Disk quota exceeded/;
/**
 * A short write carries no errno: tar says only how much went in. Free space cannot tell a full disk from
 * something else (ext4 keeps up to 16 MiB of reserved clusters that statfs counts as free but no file can use), so
 * a probe write into the target asks the filesystem itself, and only its ENOSPC (or EDQUOT) means a full disk.
 */
const SHORT_WRITE_LINE = /Wrote only \d+ of \d+ bytes/;
const NO_SPACE_ERRNOS = new Set(['ENOSPC', 'EDQUOT']);
/** More than a filesystem's last few free blocks, so a probe that fits means there is room. */
const PROBE_BYTES = 4 * 1024 * 1024;
const READ_CHUNK = 1024 * 1024;

export function tarExtractArgv(targetDir: string, selinux: boolean): string[] {
  return [
    'tar',
    '--extract',
    '--file=-',
    `--directory=${targetDir}`,
    '--numeric-owner',
    '--same-owner',
    '--same-permissions',
    '--xattrs',
    '--xattrs-include=*',
    '--acls',
    ...(selinux ? ['--selinux'] : []),
  ];
}

export async function extractBundle(runner: HostRunner, opts: ExtractBundleOptions): Promise<ExtractResult> {
  const blobStat = await stat(opts.blobPath).catch(() => undefined);
  if (!blobStat?.isFile()) throw notFound(`bundle archive ${opts.blobPath} does not exist`);
  const targetStat = await stat(opts.targetDir).catch(() => undefined);
  if (!targetStat?.isDirectory()) throw invalidInput(`extraction target ${opts.targetDir} is not an existing directory`);

  const total = blobStat.size;
  const meter = hashingMeter((n) => opts.onProgress?.({ compressedBytesRead: n, compressedBytesTotal: total }), PROGRESS_EVERY_BYTES);
  const file = createReadStream(opts.blobPath, { highWaterMark: READ_CHUNK });
  let readError: unknown;
  // A read error ends the decompressor's input early; it then fails, but the read error is the one to report.
  streamPipeline(file, meter.stream).catch((e: unknown) => {
    readError = e;
  });

  const tarLines: string[] = [];
  try {
    const pipe = runner.pipeline({
      stages: [
        { argv: decompressArgv(opts.compression) },
        {
          argv: tarExtractArgv(opts.targetDir, opts.selinux ?? false),
          onStderrLine: (line) => {
            if (tarLines.length < MAX_TAR_LINES) tarLines.push(line);
            return false;
          },
        },
      ],
      stdin: meter.stream,
      stdout: 'ignore',
      signal: opts.signal,
    });
    await pipe.done;
  } catch (e) {
    if (readError) throw readError;
    throw (await classifyTarFailure(e, tarLines, opts, meter.bytes(), total)) ?? e;
  } finally {
    file.destroy();
  }
  if (readError) throw readError;
  const read = meter.bytes();
  opts.onProgress?.({ compressedBytesRead: read, compressedBytesTotal: total });
  const sha256 = meter.digest();
  if (opts.expectedSha256 !== undefined && sha256 !== opts.expectedSha256) {
    throw invalidInput(
      `bundle archive ${opts.blobPath} is corrupt: sha256 ${sha256}, expected ${opts.expectedSha256}`,
      'discard what was extracted; run vmforge bundle verify, then re-create or re-fetch the bundle',
    );
  }
  return { compressedBytes: read, sha256 };
}

/** A typed error for the failures that are about the bundle or the disk size; undefined for the rest. */
async function classifyTarFailure(
  e: unknown,
  tarLines: readonly string[],
  opts: ExtractBundleOptions,
  compressedRead: number,
  compressedTotal: number,
): Promise<VmforgeError | undefined> {
  const what = opts.bundleRef ? `bundle ${opts.bundleRef}` : `bundle archive ${opts.blobPath}`;
  if (isNoSpaceError(e)) return noSpace(what, opts, compressedRead, compressedTotal);
  if (!(e instanceof VmforgeError) || e.code !== 'COMMAND_FAILED') return undefined;
  if (tarLines.some((l) => NO_SPACE_LINE.test(l)) || (tarLines.some((l) => SHORT_WRITE_LINE.test(l)) && (await probeSaysFull(opts.targetDir)))) {
    return noSpace(what, opts, compressedRead, compressedTotal);
  }
  const unsafe = tarLines.filter((l) => UNSAFE_TAR_LINE.test(l));
  if (unsafe.length > 0) {
    const shown = unsafe.slice(0, 3).map((l) => l.replace(/^tar: /, ''));
    const more = unsafe.length > 3 ? ` (and ${unsafe.length - 3} more)` : '';
    return new VmforgeError(
      'UNSAFE_PATH',
      `${what} has members that would land outside the target or write through a symlink; tar refused them: ${shown.join('; ')}${more}`,
      { hint: 'the archive is broken or hostile: do not use it; re-create the bundle with vmforge bundle create', cause: e },
    );
  }
  return undefined;
}

/** True for an errno error (or one caused by it, at any depth) that says the filesystem or quota is full. */
export function isNoSpaceError(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur instanceof Error && depth < 8; cur = cur.cause, depth++) {
    const code = (cur as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && NO_SPACE_ERRNOS.has(code)) return true;
  }
  return false;
}

/** Writes (and syncs) PROBE_BYTES into a new file in `dir`, then removes it: true when that write gets ENOSPC/EDQUOT. */
export async function probeSaysFull(dir: string): Promise<boolean> {
  const path = join(dir, `.vmforge-space-probe-${randomBytes(6).toString('hex')}`);
  let fh;
  try {
    fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    const chunk = Buffer.alloc(1024 * 1024);
    for (let done = 0; done < PROBE_BYTES; ) {
      const n = (await fh.write(chunk, 0, chunk.length)).bytesWritten;
      if (n === 0) return false;
      done += n;
    }
    await fh.sync();
    return false;
  } catch (err) {
    return isNoSpaceError(err);
  } finally {
    await fh?.close().catch(() => undefined);
    await rm(path, { force: true }).catch(() => undefined);
  }
}

async function noSpace(what: string, opts: ExtractBundleOptions, compressedRead: number, compressedTotal: number): Promise<VmforgeError> {
  const fs = await statfs(opts.targetDir).catch(() => undefined);
  const fsBytes = fs ? fs.blocks * fs.bsize : 0;
  const usedBytes = fs ? (fs.blocks - fs.bfree) * fs.bsize : 0;
  // The share of the archive tar got through predicts the whole; never less than what did not fit.
  const share = compressedTotal > 0 ? Math.min(Math.max(compressedRead / compressedTotal, 0.01), 1) : 1;
  const estimate = Math.max(Math.ceil(usedBytes / share), fsBytes + 1);
  let hint = `use a larger --disk: the bundle needs about ${formatSize(estimate)} unpacked`;
  try {
    requireDiskFitsBundle({ diskBytes: 0, swapBytes: opts.swapBytes ?? 0 }, estimate, what);
  } catch (err) {
    if (err instanceof VmforgeError && err.hint) hint = `${err.hint}; the bundle unpacks to about ${formatSize(estimate)}, more than its manifest says`;
  }
  return new VmforgeError(
    'INSUFFICIENT_SPACE',
    `${what} does not fit: the ${formatSize(fsBytes)} root filesystem filled up ${Math.round(share * 100)}% of the way through the archive`,
    { hint },
  );
}
