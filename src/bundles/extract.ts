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
 * GNU tar already keeps members inside the target: it strips leading '/', skips members containing '..', and
 * defers symlinks whose target is absolute or contains '..' until everything else is extracted, so a member
 * cannot be written through such a link.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline as streamPipeline } from 'node:stream/promises';
import { invalidInput, notFound } from '../errors.js';
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
}

export interface ExtractResult {
  compressedBytes: number;
  sha256: string;
}

const PROGRESS_EVERY_BYTES = 4 * 1024 * 1024;
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

  try {
    const pipe = runner.pipeline({
      stages: [{ argv: decompressArgv(opts.compression) }, { argv: tarExtractArgv(opts.targetDir, opts.selinux ?? false) }],
      stdin: meter.stream,
      stdout: 'ignore',
      signal: opts.signal,
    });
    await pipe.done;
  } catch (e) {
    throw readError ?? e;
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
