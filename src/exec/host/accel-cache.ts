/**
 * The accelerator probe's result, kept per host boot and per libvirt URI in `<stateDir>/cache/accel-probe.json`.
 * An entry counts only while what it was measured against is unchanged: the boot id, /dev/kvm's mode, owner
 * and device number, and the QEMU binary (mtime and size: a package upgrade changes them).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ProbeResult } from '../../core/host/accelerator.js';

export interface ProbeCacheKey {
  uri: string;
  bootId: string;
  /** "mode:uid:gid:rdev" of the device, or "absent". */
  device: string;
  /** "path:mtimeMs:size" of the emulator. */
  emulator: string;
}

interface CacheEntry extends Omit<ProbeCacheKey, 'uri'> {
  result: ProbeResult;
  at: string;
}

interface CacheFile {
  version: 1;
  entries: Record<string, CacheEntry>;
}

export function probeCachePath(stateDir: string): string {
  return join(stateDir, 'cache', 'accel-probe.json');
}

export async function readCachedProbe(stateDir: string, key: ProbeCacheKey): Promise<ProbeResult | null> {
  const e = (await readCache(stateDir)).entries[key.uri];
  if (!e || e.bootId !== key.bootId || e.device !== key.device || e.emulator !== key.emulator) return null;
  return e.result;
}

export async function writeCachedProbe(stateDir: string, key: ProbeCacheKey, result: ProbeResult, now: Date = new Date()): Promise<void> {
  const file = probeCachePath(stateDir);
  const cache = await readCache(stateDir);
  const { uri, ...rest } = key;
  cache.entries[uri] = { ...rest, result, at: now.toISOString() };
  await mkdir(dirname(file), { recursive: true, mode: 0o755 });
  // Write then rename: a concurrent reader sees the old file or the new one, never half of one.
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(cache, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, file);
}

async function readCache(stateDir: string): Promise<CacheFile> {
  try {
    const parsed = JSON.parse(await readFile(probeCachePath(stateDir), 'utf8')) as Partial<CacheFile>;
    if (parsed.version === 1 && parsed.entries && typeof parsed.entries === 'object') return { version: 1, entries: parsed.entries };
  } catch {
    // Absent or unreadable: no cache (the probe runs again and rewrites it).
  }
  return { version: 1, entries: {} };
}
