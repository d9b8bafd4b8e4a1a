/** Free space for a directory that may not exist yet: asked of the nearest ancestor that does. */
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface FreeSpace {
  /** The directory statfs answered for (`dir` itself or its nearest existing ancestor). */
  measuredAt: string;
  /** Bytes an unprivileged writer may use (f_bavail); root may use the filesystem's reserve on top. */
  availableBytes: number;
  totalBytes: number;
}

export async function freeSpace(dir: string): Promise<FreeSpace> {
  for (let d = dir; ; d = dirname(d)) {
    try {
      const s = await statfs(d);
      return { measuredAt: d, availableBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || d === dirname(d)) throw e;
    }
  }
}
