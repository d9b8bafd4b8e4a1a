/** Whole-buffer writes on a FileHandle (a write may take fewer bytes than asked). */
import type { FileHandle } from 'node:fs/promises';

/** Writes all of `bufs` in as few writev calls as the kernel allows, at the handle's position (or end, O_APPEND). */
export async function writevAll(fh: FileHandle, bufs: readonly Buffer[]): Promise<void> {
  let pending = bufs;
  while (pending.length) {
    let n = (await fh.writev(pending as Buffer[])).bytesWritten;
    const rest: Buffer[] = [];
    for (const b of pending) {
      if (n >= b.length) n -= b.length;
      else {
        rest.push(b.subarray(n));
        n = 0;
      }
    }
    pending = rest;
  }
}
