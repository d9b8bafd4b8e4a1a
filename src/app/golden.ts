/**
 * Golden images: prepared once per key by the cold path's disk steps (create, attach, format, mount, extract,
 * GRUB, release) into a temp file that is renamed into place, then only ever read. Builds that need the same
 * key at the same time take a lock file per key: the first prepares, the others wait and reuse its image.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rename, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { extractBundle } from '../bundles/extract.js';
import { formatUuid } from '../core/ipam/mac.js';
import { mbrBytes } from '../core/disk/mbr.js';
import { rootPartition } from '../core/disk/layout.js';
import { GOLDEN_EXT4, planGolden } from '../core/plan/golden-plan.js';
import type { BuildPlan } from '../core/plan/build-plan.js';
import { acquireHostLock } from '../exec/host-lock.js';
import { createSparseFile, writeAt } from '../exec/tools/disk-image.js';
import { installGrubBios } from '../exec/tools/grub.js';
import { checkExt4 } from '../exec/tools/grow-fs.js';
import { attachPartitions, detachPartitions } from '../exec/tools/loop.js';
import { makeFilesystem } from '../exec/tools/mkfs.js';
import { mount, privateMountRoot, umount } from '../exec/tools/mount.js';
import type { StepContext, UndoHandle } from '../pipeline/pipeline.js';
import type { AppContext } from './context.js';
import { grubCoreCacheDir } from './grub-core-cache.js';

/** A golden image ready to clone. */
export interface GoldenImage {
  key: string;
  path: string;
  diskBytes: number;
  /** This build made it (false: it was there, or another build made it while we waited). */
  prepared: boolean;
}

/** Preparing one takes a bundle extraction; a waiter gives up after this long. */
const GOLDEN_LOCK_WAIT_MS = 30 * 60_000;

export async function ensureGolden(ctx: AppContext, c: StepContext, input: { plan: BuildPlan; blobPath: string }): Promise<GoldenImage> {
  const clone = input.plan.clone;
  if (!clone) throw new Error('ensureGolden needs a warm plan');
  const found = await existing(clone.goldenKey, clone.goldenPath);
  if (found) return found;
  const dir = join(clone.goldenPath, '..');
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const lock = await acquireHostLock(join(dir, `${clone.goldenKey}.lock`), {
    waitMs: GOLDEN_LOCK_WAIT_MS,
    signal: c.signal,
    command: `vmforge: prepare golden image ${clone.goldenKey}`,
    onWait: (h) => c.info(`waiting for pid ${h.pid}, which prepares this golden image`),
  });
  try {
    const made = await existing(clone.goldenKey, clone.goldenPath);
    if (made) return made;
    return await prepare(ctx, c, input.plan, input.blobPath);
  } finally {
    await lock.release();
  }
}

async function existing(key: string, path: string): Promise<GoldenImage | null> {
  const st = await stat(path).catch(() => null);
  return st ? { key, path, diskBytes: st.size, prepared: false } : null;
}

async function prepare(ctx: AppContext, c: StepContext, plan: BuildPlan, blobPath: string): Promise<GoldenImage> {
  const clone = plan.clone as NonNullable<BuildPlan['clone']>;
  const { runner } = ctx;
  const fs = plan.spec.fs;
  const g = planGolden({ manifest: plan.manifest, fs, rootFsUuid: formatUuid(randomBytes(16)), diskSignature: randomBytes(4).readUInt32LE(0) });
  const nonce = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = `${clone.goldenPath}.${nonce}.tmp`;
  const mnt = join(ctx.config.runDir, 'mnt', `.golden-${nonce}`);
  // The golden outlives this build: once renamed into place, its undo records are dropped.
  const undos: UndoHandle[] = [];
  const willUndo = async (r: Parameters<StepContext['willUndo']>[0]) => void undos.push(await c.willUndo(r));

  c.info(`preparing golden image ${g.key} (${plan.bundleRef}, ${fs})`);
  await willUndo({ kind: 'file.remove', path: tmp });
  await createSparseFile(tmp, g.layout.diskBytes);
  // No fsync here nor after GRUB's sectors: the unmount below flushes through the loop device (an fsync of the
  // whole temp image), and a crash before the rename leaves only a temp file that the undo removes.
  await writeAt(tmp, 0, mbrBytes(g.layout, g.diskSignature), { sync: false });
  await willUndo({ kind: 'loop.detach-backing', backingFile: tmp });
  const attached = await attachPartitions(runner, { file: tmp, layout: g.layout, strategy: plan.partitionAccess });
  const rootDev = attached.devices.find((d) => d.role === 'root')?.device as string;
  await makeFilesystem(runner, { device: rootDev, fs, uuid: g.rootFsUuid, signal: c.signal, ...(fs === 'ext4' ? { ext4: GOLDEN_EXT4 } : {}) });
  await willUndo({ kind: 'dir.remove', path: mnt });
  await privateMountRoot(ctx.config.runDir);
  await mkdir(mnt, { recursive: true, mode: 0o700 });
  await willUndo({ kind: 'mount.umount', target: mnt });
  await mount(runner, { device: rootDev, target: mnt, fsType: fs });
  await extractBundle(runner, {
    blobPath,
    compression: plan.manifest.compression,
    expectedSha256: plan.manifest.sha256,
    targetDir: mnt,
    bundleRef: plan.bundleRef,
    swapBytes: 0,
    signal: c.signal,
    onProgress: (p) => c.progress(p.compressedBytesRead, plan.manifest.compressedBytes, 'bytes'),
  });
  await installGrubBios(runner, {
    diskPath: tmp,
    rootMountDir: mnt,
    layout: g.layout,
    fs,
    grubCfgText: g.grubCfg,
    tmpDir: ctx.config.runDir,
    coreCacheDir: grubCoreCacheDir(ctx.config),
    syncWrites: false,
    signal: c.signal,
  });
  await umount(runner, mnt);
  await rmdir(mnt);
  // Checked once here, so that no clone's resize2fs asks for its own e2fsck -f (lastcheck >= last mount).
  if (fs === 'ext4') await checkExt4(runner, rootDev, c.signal);
  await detachPartitions(runner, attached.undo);
  // Read-only from here on: a clone never writes it (qcow2 opens it read-only, reflink copies it).
  await chmod(tmp, 0o444);
  await rename(tmp, clone.goldenPath);
  for (const u of undos) await u.cancel();
  c.info(`golden image ${g.key}: ${Math.round(rootPartition(g.layout).sizeBytes / 2 ** 20)} MiB root, prepared`);
  return { key: g.key, path: clone.goldenPath, diskBytes: g.layout.diskBytes, prepared: true };
}

/** Golden images in the store: `<storage>/golden/<key>.img`. */
export async function listGoldenFiles(storageDir: string): Promise<{ key: string; path: string; bytes: number; allocatedBytes: number }[]> {
  const dir = join(storageDir, 'golden');
  const out: { key: string; path: string; bytes: number; allocatedBytes: number }[] = [];
  for (const f of (await readdir(dir).catch(() => [] as string[])).sort()) {
    if (!f.endsWith('.img')) continue;
    const path = join(dir, f);
    const st = await stat(path).catch(() => null);
    if (st?.isFile()) out.push({ key: f.slice(0, -'.img'.length), path, bytes: st.size, allocatedBytes: st.blocks * 512 });
  }
  return out;
}
