/**
 * The host facts liveSystemExcludes needs (live-excludes.ts): active swap files, where the bundle store really
 * is, whether dbus keeps its own machine-id file.
 */
import { lstat, readFile, realpath } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { invalidInput } from '../errors.js';
import { DBUS_MACHINE_ID, liveSystemExcludes, parseProcSwaps } from './live-excludes.js';

export async function liveExcludesFor(rootDir: string, storeDir: string, extra: readonly string[]): Promise<{ root: string; excludes: string[] }> {
  const root = await realpath(rootDir).catch(() => {
    throw invalidInput(`root ${rootDir} does not exist`);
  });
  const swaps = await readFile('/proc/swaps', 'utf8').then(parseProcSwaps, () => [] as string[]);
  const swapFiles = await Promise.all(swaps.map((s) => realpath(s).catch(() => s)));
  // The store may not exist yet; its nearest existing ancestor's real path decides where it will be.
  const store = await realpathOfPossiblyMissing(storeDir);
  const dbus = await lstat(join(root, DBUS_MACHINE_ID)).catch(() => undefined);
  const dbusParent = await lstat(join(root, 'var/lib/dbus')).catch(() => undefined);
  return {
    root,
    excludes: liveSystemExcludes({ root, swapFiles, storeDir: store, dbusMachineIdIsFile: Boolean(dbus?.isFile() && dbusParent?.isDirectory()) }, extra),
  };
}

async function realpathOfPossiblyMissing(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return await realpath(abs);
  } catch {
    const parent = resolve(abs, '..');
    if (parent === abs) return abs;
    return join(await realpathOfPossiblyMissing(parent), abs.slice(parent.length + (parent === '/' ? 0 : 1)));
  }
}
