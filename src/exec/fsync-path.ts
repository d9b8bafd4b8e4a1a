/**
 * fsync of a file or directory named by path: a renamed file's directory entry is only durable once its
 * directory is fsynced, and a file written through another handle (or by another program) has no handle here.
 */
import { open } from 'node:fs/promises';

export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
