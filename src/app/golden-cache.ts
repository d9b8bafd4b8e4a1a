/**
 * `vmforge cache list | prune`: the golden images in `<storage>/golden`, who uses them, and removing those no VM
 * needs. A VM uses a golden image when its qcow2 overlay is backed by it, or while it is being built from the
 * same bundle (its overlay may not exist yet). Pruning a key holds that key's lock, so it never races a build
 * that is preparing the same image.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireHostLock } from '../exec/host-lock.js';
import { imageInfo } from '../exec/tools/qcow2.js';
import { VmforgeError } from '../errors.js';
import type { AppContext } from './context.js';
import { listGoldenFiles } from './golden.js';

export interface GoldenEntry {
  key: string;
  path: string;
  /** Bundles in the local store with this content. */
  bundles: string[];
  bytes: number;
  allocatedBytes: number;
  users: string[];
}

export async function listGoldenImages(ctx: AppContext): Promise<GoldenEntry[]> {
  const files = await listGoldenFiles(ctx.config.storage.dir);
  if (!files.length) return [];
  const manifests = await ctx.bundles.list().catch(() => []);
  const vms = await ctx.vms.list();
  const backing = new Map<string, string>();
  for (const v of vms) {
    if (!v.disk_path.endsWith('.qcow2')) continue;
    const info = await imageInfo(ctx.runner, v.disk_path).catch(() => null);
    if (info?.fullBackingFile) backing.set(v.name, info.fullBackingFile);
  }
  return files.map((f) => {
    const sha = f.key.slice(0, 64);
    const users = vms.filter((v) => backing.get(v.name) === f.path || (v.status === 'building' && v.bundle_sha256 === sha)).map((v) => v.name);
    return { ...f, bundles: manifests.filter((m) => m.sha256 === sha).map((m) => `${m.name}:${m.version}`), users };
  });
}

export async function pruneGoldenImages(ctx: AppContext, opts: { dryRun?: boolean } = {}): Promise<{ removed: GoldenEntry[]; kept: GoldenEntry[] }> {
  const removed: GoldenEntry[] = [];
  const kept: GoldenEntry[] = [];
  for (const g of await listGoldenImages(ctx)) {
    if (g.users.length) {
      kept.push(g);
      continue;
    }
    if (opts.dryRun) {
      removed.push(g);
      continue;
    }
    let lock;
    try {
      lock = await acquireHostLock(join(ctx.config.storage.dir, 'golden', `${g.key}.lock`), { waitMs: 0, command: 'vmforge cache prune' });
    } catch (e) {
      if (e instanceof VmforgeError && e.code === 'LOCKED') {
        kept.push(g); // a build is preparing or checking it right now
        continue;
      }
      throw e;
    }
    try {
      // Checked again under the lock: a build may have started on it since the list.
      const again = (await listGoldenImages(ctx)).find((x) => x.key === g.key);
      if (again?.users.length) {
        kept.push(again);
        continue;
      }
      await rm(g.path, { force: true });
      removed.push(g);
    } finally {
      await lock.release();
    }
  }
  return { removed, kept };
}
