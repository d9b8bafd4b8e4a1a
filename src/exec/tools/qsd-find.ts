/**
 * Finding the qemu-storage-daemon that serves a FUSE export, from /proc alone: the build journals the export's
 * undo before the daemon exists (so before its pid is known), and a crashed vmforge leaves only that record.
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename } from 'node:path';

/** Pids of qemu-storage-daemon processes whose --export names `exportPath` as its mountpoint. */
export async function fuseExportDaemonPids(exportPath: string, procDir = '/proc'): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir(procDir).catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = await readFile(`${procDir}/${entry}/cmdline`, 'utf8').then((t) => t.split('\0'), () => [] as string[]);
    if (basename(argv[0] ?? '') !== 'qemu-storage-daemon') continue;
    if (argv.some((a) => a.includes(`mountpoint=${exportPath},`))) pids.push(Number(entry));
  }
  return pids;
}

/** Every qemu-storage-daemon whose command line mentions a path under `dir` (for leak checks). */
export async function fuseDaemonsUnder(dir: string, procDir = '/proc'): Promise<{ pid: number; argv: string[] }[]> {
  const out: { pid: number; argv: string[] }[] = [];
  for (const entry of await readdir(procDir).catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = await readFile(`${procDir}/${entry}/cmdline`, 'utf8').then((t) => t.split('\0'), () => [] as string[]);
    if (basename(argv[0] ?? '') === 'qemu-storage-daemon' && argv.some((a) => a.includes(dir))) out.push({ pid: Number(entry), argv: argv.filter(Boolean) });
  }
  return out;
}
