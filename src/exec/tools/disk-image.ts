/** Raw disk image files: sparse creation, positioned reads and writes, idempotent removal. */
import { open, rm, stat } from 'node:fs/promises';
import { conflict, invalidInput, VmforgeError } from '../../errors.js';
import { writeAllAt } from '../positioned-io.js';

/** Undo data for createSparseFile. */
export interface CreatedFile {
  path: string;
}

/** Creates `path` (it must not exist) as a sparse file of `bytes`: no blocks are allocated until written. */
export async function createSparseFile(path: string, bytes: number): Promise<CreatedFile> {
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw invalidInput(`image size ${String(bytes)} is not a positive number of bytes`);
  let fh;
  try {
    fh = await open(path, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw conflict(`disk image ${path} already exists`, 'remove it or choose another name');
    throw e;
  }
  try {
    await fh.truncate(bytes);
  } finally {
    await fh.close();
  }
  return { path };
}

/**
 * Writes all of `buf` at byte `offset`, refusing to grow the file (a wrong offset must not go unnoticed). With
 * `sync` (the default) it fsyncs before returning; a caller that gets durability from a later flush can skip it.
 */
export async function writeAt(path: string, offset: number, buf: Uint8Array, opts: { sync?: boolean } = {}): Promise<void> {
  if (!Number.isSafeInteger(offset) || offset < 0) throw invalidInput(`offset ${String(offset)} is not a byte position`);
  const fh = await open(path, 'r+');
  try {
    const { size } = await fh.stat();
    if (offset + buf.length > size) {
      throw new VmforgeError('INTERNAL', `writing ${buf.length} bytes at ${offset} would go past the end of ${path} (${size} bytes)`);
    }
    await writeAllAt(fh, buf, offset);
    if (opts.sync !== false) await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function readAt(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) throw new VmforgeError('INTERNAL', `${path} ends before byte ${offset + length}`);
      done += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}

/** Removes a file; a file that is already gone is success. */
export async function removeFile(path: string): Promise<void> {
  await rm(path, { force: true });
}

export async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}
