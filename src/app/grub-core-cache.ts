/**
 * The GRUB core.img cache in `<stateDir>/cache/grub-core` (see exec/tools/grub-core-cache.ts), as `vmforge cache
 * list | prune` shows it. An entry is current when its key is what this host's GRUB gives for ext4 or xfs now;
 * the others were made by a GRUB no longer installed (or from a module dir that changed) and no build can use
 * them again, so prune removes them, along with corrupt entries and temp files too old to have a writer.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { GRUB_I386_PC_DIR } from '../core/boot/grub-bios.js';
import { parseCoreCacheName } from '../core/boot/grub-core-cache.js';
import type { FsType } from '../core/model/spec.js';
import type { Config } from '../config/schema.js';
import { coreCacheKey } from '../exec/tools/grub-core-cache.js';

export function grubCoreCacheDir(config: Pick<Config, 'stateDir'>): string {
  return join(config.stateDir, 'cache', 'grub-core');
}

export interface GrubCoreEntry {
  name: string;
  path: string;
  bytes: number;
  /** 'current': this host's GRUB makes this key for that fs; 'stale': it does not; 'temp': a write in progress or abandoned. */
  state: 'current' | 'stale' | 'temp';
  /** The file system a current entry is for. */
  fs?: FsType;
}

/** grub-mkimage gets 60 s; a temp file this old has no writer any more. */
const TEMP_GRACE_MS = 10 * 60_000;

export async function listGrubCoreCache(config: Pick<Config, 'stateDir'>, grubDir = GRUB_I386_PC_DIR): Promise<GrubCoreEntry[]> {
  const dir = grubCoreCacheDir(config);
  const names = (await readdir(dir).catch(() => [] as string[])).sort();
  if (!names.length) return [];
  const current = new Map<string, FsType>();
  for (const fs of ['ext4', 'xfs'] as const) {
    const key = await coreCacheKey(fs, grubDir);
    if (key) current.set(key, fs);
  }
  const out: GrubCoreEntry[] = [];
  for (const name of names) {
    const e = parseCoreCacheName(name);
    if (e.kind === 'other') continue;
    const path = join(dir, name);
    const st = await stat(path).catch(() => null);
    if (!st?.isFile()) continue;
    const fs = e.kind === 'core' ? current.get(e.key) : undefined;
    out.push({ name, path, bytes: st.size, state: e.kind === 'temp' ? 'temp' : fs ? 'current' : 'stale', ...(fs ? { fs } : {}) });
  }
  return out;
}

export async function pruneGrubCoreCache(
  config: Pick<Config, 'stateDir'>,
  opts: { dryRun?: boolean; nowMs: number; grubDir?: string },
): Promise<{ removed: GrubCoreEntry[]; kept: GrubCoreEntry[] }> {
  const removed: GrubCoreEntry[] = [];
  const kept: GrubCoreEntry[] = [];
  for (const e of await listGrubCoreCache(config, opts.grubDir)) {
    if (!(await removable(e, opts.nowMs))) {
      kept.push(e);
      continue;
    }
    if (!opts.dryRun) await rm(e.path, { force: true });
    removed.push(e);
  }
  return { removed, kept };
}

async function removable(e: GrubCoreEntry, nowMs: number): Promise<boolean> {
  const parsed = parseCoreCacheName(e.name);
  switch (parsed.kind) {
    case 'temp': {
      const st = await stat(e.path).catch(() => null);
      return st !== null && nowMs - st.mtimeMs > TEMP_GRACE_MS;
    }
    case 'core': {
      if (e.state === 'stale') return true;
      // A current entry stays unless its content no longer matches its name (a build would drop it anyway).
      const data = await readFile(e.path).catch(() => null);
      return data !== null && createHash('sha256').update(data).digest('hex') !== parsed.sha256;
    }
    case 'other':
      return false;
  }
}
