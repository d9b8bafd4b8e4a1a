/**
 * The warm build's disk steps: clone the golden image (qcow2 overlay or reflink copy), reach the clone as a raw
 * file (the overlay through a qemu-storage-daemon FUSE export), grow its partition table to the VM's disk,
 * write the swap header, grow the root filesystem and give it its own UUID. The shared steps (root.mount,
 * guest.configure, domain.*) then run as in the cold build. Every side effect journals its undo first.
 */
import { mkdir, realpath, rmdir, truncate } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { growGoldenMbr } from '../core/disk/grow.js';
import { rootPartition, swapPartition } from '../core/disk/layout.js';
import { swapHeaderBytes } from '../core/disk/swap-header.js';
import type { BuildPlan, BuildStepId } from '../core/plan/build-plan.js';
import { VmforgeError } from '../errors.js';
import { requireDaemonRunner } from '../exec/daemon.js';
import { GuestRoot } from '../exec/guestfs/guest-root.js';
import { readAt, writeAt } from '../exec/tools/disk-image.js';
import { setFsUuid } from '../exec/tools/fs-uuid.js';
import { growFilesystem } from '../exec/tools/grow-fs.js';
import { attachLoop, detachLoop, type LoopRef } from '../exec/tools/loop.js';
import { umount } from '../exec/tools/mount.js';
import { createOverlay } from '../exec/tools/qcow2.js';
import { exportQcow2AsRaw, type FuseExport } from '../exec/tools/qsd-fuse.js';
import { reflinkCopy } from '../exec/tools/reflink.js';
import type { StepContext } from '../pipeline/pipeline.js';
import type { AppContext } from './context.js';
import { ensureGolden, type GoldenImage } from './golden.js';

export interface WarmState {
  golden?: GoldenImage;
  /** qcow2: the running export; its rawPath is what the tools write to. */
  export?: FuseExport;
  /** The clone as a raw file: the FUSE export (qcow2) or the disk itself (reflink). */
  rawPath?: string;
  rootLoop?: LoopRef;
  rootDevice?: string;
}

type WarmStep = (c: StepContext, s: WarmState) => Promise<void>;

/** The warm steps, plus root.release for a clone (loop device and export instead of the cold attachment). */
export function warmStepImplementations(ctx: AppContext, cur: { plan: BuildPlan }, blobPath: string): Partial<Record<BuildStepId, WarmStep>> {
  const { runner } = ctx;
  const plan0 = cur.plan;
  const clone = plan0.clone;
  if (!clone) throw new Error('warm steps need a warm plan');
  const { paths } = plan0;
  return {
    'golden.ensure': async (c, s) => {
      s.golden = await ensureGolden(ctx, c, { plan: cur.plan, blobPath });
      if (!s.golden.prepared) c.info(`golden image ${s.golden.key}: reused`);
    },
    'clone.create': async (c, s) => {
      const golden = s.golden as GoldenImage;
      const { spec } = cur.plan;
      const undo = await c.willUndo({ kind: 'file.remove', path: paths.disk });
      try {
        if (clone.strategy === 'qcow2') {
          await createOverlay({ backing: golden.path, backingFormat: 'raw', overlay: paths.disk, sizeBytes: spec.diskBytes, signal: c.signal });
        } else {
          await reflinkCopy(runner, golden.path, paths.disk, { signal: c.signal });
          await truncate(paths.disk, spec.diskBytes);
        }
      } catch (e) {
        // A file already at this path is someone else's and must survive our undo.
        if (e instanceof VmforgeError && e.code === 'CONFLICT') await undo.cancel();
        throw e;
      }
    },
    'clone.attach': async (c, s) => {
      const { plan } = cur;
      const { spec } = plan;
      const golden = s.golden as GoldenImage;
      if (clone.strategy === 'qcow2') {
        const wanted = clone.exportPath as string;
        await mkdir(dirname(wanted), { recursive: true, mode: 0o700 });
        // Canonical, as the daemon's command line will show it: the undo finds the daemon by that path.
        const exportPath = join(await realpath(dirname(wanted)), basename(wanted));
        await c.willUndo({ kind: 'fuse.unexport', exportPath, qcow2Path: paths.disk });
        s.export = await exportQcow2AsRaw(requireDaemonRunner(runner), { qcow2Path: paths.disk, exportPath, expectedSizeBytes: spec.diskBytes, signal: c.signal });
        s.rawPath = s.export.rawPath;
      } else {
        s.rawPath = paths.disk;
      }
      const raw = s.rawPath;
      const grown = growGoldenMbr({
        goldenSector: await readAt(raw, 0, 512),
        goldenDiskBytes: golden.diskBytes,
        targetDiskBytes: spec.diskBytes,
        swapBytes: spec.swapBytes,
        fs: spec.fs,
      });
      const root = rootPartition(grown.plan.layout);
      if (root.offsetBytes !== rootPartition(plan.layout).offsetBytes || root.sizeBytes !== rootPartition(plan.layout).sizeBytes) {
        throw new VmforgeError('INTERNAL', `the grown layout of golden image ${golden.key} differs from the planned one`);
      }
      await writeAt(raw, 0, grown.mbr);
      const swap = swapPartition(grown.plan.layout);
      // The VM's own swap UUID (fstab names it); one page instead of loop + mkswap + detach.
      if (swap && plan.swapFsUuid) await writeAt(raw, swap.offsetBytes, swapHeaderBytes({ sizeBytes: swap.sizeBytes, uuid: plan.swapFsUuid, label: 'swap' }));
      await c.willUndo({ kind: 'loop.detach-backing', backingFile: raw });
      s.rootLoop = await attachLoop(runner, { file: raw, offsetBytes: root.offsetBytes, sizeBytes: root.sizeBytes });
      s.rootDevice = s.rootLoop.device;
    },
    'disk.grow': async (c, s) => {
      const { spec } = cur.plan;
      const device = s.rootDevice as string;
      if (spec.fs === 'xfs') await growFilesystem(runner, { fs: 'xfs', device, mountPoint: paths.mountDir, signal: c.signal });
      else await growFilesystem(runner, { fs: 'ext4', device, signal: c.signal });
    },
    'root.reuuid': async (c, s) => {
      const { plan } = cur;
      await setFsUuid(runner, { fs: plan.spec.fs, device: s.rootDevice as string, uuid: plan.rootFsUuid, signal: c.signal });
    },
    'boot.configure': async () => {
      // core.img's prefix is (hd0,msdos1)/boot/grub, by partition number: only grub.cfg names the UUID.
      await new GuestRoot(paths.mountDir).writeText('/boot/grub/grub.cfg', cur.plan.grubCfg);
    },
    'root.release': async (_c, s) => {
      await umount(runner, paths.mountDir);
      await rmdir(paths.mountDir);
      if (s.rootLoop) await detachLoop(runner, s.rootLoop);
      s.rootLoop = undefined;
      await s.export?.stop();
      s.export = undefined;
    },
  };
}

