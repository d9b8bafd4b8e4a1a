/** Whole-buffer reads and writes at a file offset (a read or write may take fewer bytes than asked). */
import type { FileHandle } from 'node:fs/promises';

/** Writes all of `buf` at `pos` (on an O_APPEND handle the kernel appends instead: callers write at the end). */
export async function writeAllAt(fh: FileHandle, buf: Uint8Array, pos: number): Promise<void> {
  for (let off = 0; off < buf.length; ) {
    const n = (await fh.write(buf, off, buf.length - off, pos + off)).bytesWritten;
    if (n <= 0) throw Object.assign(new Error(`a write at byte ${pos + off} wrote nothing`), { code: 'EIO' });
    off += n;
  }
}

/** Reads exactly `len` bytes at `pos` into the start of `buf`. */
export async function readExactly(fh: FileHandle, buf: Buffer, len: number, pos: number): Promise<void> {
  for (let off = 0; off < len; ) {
    const n = (await fh.read(buf, off, len - off, pos + off)).bytesRead;
    if (n <= 0) throw Object.assign(new Error(`the file ended at byte ${pos + off}, before ${pos + len}`), { code: 'EIO' });
    off += n;
  }
}
