/**
 * qcow2 overlays on a golden image: a clone is an overlay whose reads fall through to the backing
 * file until written, so creating one costs a few KiB of metadata whatever the disk size.
 */
import { open, rm } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { qcow2OverlayBytes } from '../../core/disk/qcow2-overlay.js';
import { conflict, invalidInput, VmforgeError } from '../../errors.js';
import type { CommandRunner } from '../runner.js';

const TOOL_TIMEOUT_MS = 120_000;

export type ImageFormat = 'raw' | 'qcow2';

export interface CreateOverlayInput {
  /** Absolute path: qemu resolves a relative backing path against the overlay's directory, not ours. */
  backing: string;
  backingFormat?: ImageFormat;
  overlay: string;
  /** Virtual size of the overlay; at least the backing's. Omitted: the backing's size. */
  sizeBytes?: number;
  signal?: AbortSignal;
}

/** Undo data for createOverlay. */
export interface CreatedOverlay {
  path: string;
}

function checkSize(bytes: number, what: string): void {
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % 512 !== 0) {
    throw invalidInput(`${what} ${String(bytes)} is not a positive multiple of 512 bytes`);
  }
}

/** Virtual size of a backing image: a raw file's length, or a qcow2 header's size field. */
async function backingSize(path: string, format: ImageFormat): Promise<number> {
  const fh = await open(path, 'r');
  try {
    if (format === 'raw') return (await fh.stat()).size;
    const head = Buffer.alloc(32);
    await fh.read(head, 0, 32, 0);
    if (head.toString('latin1', 0, 4) !== 'QFI\xfb') throw invalidInput(`${path} is not a qcow2 image`);
    return Number(head.readBigUInt64BE(24));
  } finally {
    await fh.close();
  }
}

/**
 * Creates `overlay` on top of `backing`: the qcow2 metadata qemu-img would write (core/disk/qcow2-overlay.ts),
 * written here in one exclusive create, so an existing file is never replaced (CONFLICT instead).
 */
export async function createOverlay(input: CreateOverlayInput): Promise<CreatedOverlay> {
  if (!isAbsolute(input.backing)) throw invalidInput(`backing image path '${input.backing}' must be absolute`);
  if (input.sizeBytes !== undefined) checkSize(input.sizeBytes, 'overlay size');
  const backingFormat = input.backingFormat ?? 'raw';
  input.signal?.throwIfAborted();
  const bytes = qcow2OverlayBytes({ backing: input.backing, backingFormat, sizeBytes: input.sizeBytes ?? (await backingSize(input.backing, backingFormat)) });
  let fh;
  try {
    fh = await open(input.overlay, 'wx', 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw conflict(`disk image ${input.overlay} already exists`, 'remove it or choose another name');
    throw e;
  }
  try {
    await fh.writeFile(bytes);
  } catch (e) {
    await fh.close();
    await rm(input.overlay, { force: true });
    throw e;
  }
  await fh.close();
  return { path: input.overlay };
}

/** Grows (never shrinks: that would cut off guest data) an image's virtual size. */
export async function resizeImage(
  runner: CommandRunner,
  input: { path: string; sizeBytes: number; format?: ImageFormat; signal?: AbortSignal },
): Promise<void> {
  checkSize(input.sizeBytes, 'image size');
  const cur = await imageInfo(runner, input.path);
  if (input.sizeBytes < cur.virtualSizeBytes) {
    throw invalidInput(`refusing to shrink ${input.path} from ${cur.virtualSizeBytes} to ${input.sizeBytes} bytes`);
  }
  if (input.sizeBytes === cur.virtualSizeBytes) return;
  await runner.run(['qemu-img', 'resize', '-q', '-f', input.format ?? cur.format, input.path, String(input.sizeBytes)], {
    signal: input.signal,
    timeoutMs: TOOL_TIMEOUT_MS,
  });
}

export interface ImageInfo {
  format: ImageFormat | string;
  virtualSizeBytes: number;
  /** Bytes allocated on the host. */
  actualSizeBytes: number;
  /** As written in the image (may be relative). */
  backingFile?: string;
  /** Resolved by qemu-img. */
  fullBackingFile?: string;
  backingFormat?: string;
  clusterSize?: number;
  dirty: boolean;
  /** qcow2 only: the image was marked corrupt by qemu. */
  corrupt: boolean;
}

/** Parses `qemu-img info --output=json` for one image (not --backing-chain, which prints an array). */
export function parseQemuImgInfo(stdout: string): ImageInfo {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(stdout) as Record<string, unknown>;
  } catch (e) {
    throw new VmforgeError('INTERNAL', `qemu-img info printed something that is not JSON: ${stdout.slice(0, 200)}`, { cause: e });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || typeof doc['virtual-size'] !== 'number') {
    throw new VmforgeError('INTERNAL', `qemu-img info output has no virtual-size: ${stdout.slice(0, 200)}`);
  }
  const str = (k: string) => (typeof doc[k] === 'string' ? doc[k] : undefined);
  const specific = (doc['format-specific'] as { data?: Record<string, unknown> } | undefined)?.data ?? {};
  return {
    format: str('format') ?? 'unknown',
    virtualSizeBytes: doc['virtual-size'],
    actualSizeBytes: typeof doc['actual-size'] === 'number' ? doc['actual-size'] : 0,
    backingFile: str('backing-filename'),
    fullBackingFile: str('full-backing-filename'),
    backingFormat: str('backing-filename-format'),
    clusterSize: typeof doc['cluster-size'] === 'number' ? doc['cluster-size'] : undefined,
    dirty: doc['dirty-flag'] === true,
    corrupt: specific.corrupt === true,
  };
}

export async function imageInfo(runner: CommandRunner, path: string, opts: { signal?: AbortSignal } = {}): Promise<ImageInfo> {
  // -U: read even while a daemon or VM holds the image's write lock (we only want the header).
  const { stdout } = await runner.run(['qemu-img', 'info', '-U', '--output=json', path], { signal: opts.signal, timeoutMs: TOOL_TIMEOUT_MS });
  return parseQemuImgInfo(stdout);
}
