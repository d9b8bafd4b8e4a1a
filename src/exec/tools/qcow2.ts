/**
 * qcow2 overlays on a golden image (qemu-img): a clone is an overlay whose reads fall through to the backing
 * file until written, so creating one costs a few KiB of metadata whatever the disk size.
 */
import { lstat, rm } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
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

/** argv for createOverlay; exported for tests and --dry-run output. */
export function createOverlayArgv(input: Omit<CreateOverlayInput, 'signal'>): string[] {
  if (!isAbsolute(input.backing)) throw invalidInput(`backing image path '${input.backing}' must be absolute`);
  if (input.sizeBytes !== undefined) checkSize(input.sizeBytes, 'overlay size');
  return [
    'qemu-img',
    'create',
    '-q',
    '-f',
    'qcow2',
    '-F',
    input.backingFormat ?? 'raw',
    '-b',
    input.backing,
    input.overlay,
    ...(input.sizeBytes !== undefined ? [String(input.sizeBytes)] : []),
  ];
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Creates `overlay` (it must not exist: qemu-img would silently replace it) on top of `backing`. */
export async function createOverlay(runner: CommandRunner, input: CreateOverlayInput): Promise<CreatedOverlay> {
  const argv = createOverlayArgv(input);
  if (await exists(input.overlay)) throw conflict(`disk image ${input.overlay} already exists`, 'remove it or choose another name');
  try {
    await runner.run(argv, { signal: input.signal, timeoutMs: TOOL_TIMEOUT_MS });
  } catch (e) {
    await rm(input.overlay, { force: true });
    throw e;
  }
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
