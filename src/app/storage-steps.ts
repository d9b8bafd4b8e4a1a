/**
 * The only backend-specific build steps: making the block devices (disk.create, disk.attach) for image files
 * with the Xen partitions layout and for LVM volumes, plus pygrub's grub.cfg. The whole-disk file backend keeps
 * its steps in build.ts; everything after disk.attach (mkfs, mount, bundle, guest edits) is shared.
 */
import { mbrBytes } from '../core/disk/mbr.js';
import { PYGRUB_CFG_PATH } from '../core/boot/pygrub.js';
import type { BuildPlan, BuildStepId } from '../core/plan/build-plan.js';
import { VmforgeError } from '../errors.js';
import { GuestRoot } from '../exec/guestfs/guest-root.js';
import { runLvmArgv } from '../exec/storage/lvm-facts.js';
import { createSparseFile, writeAt } from '../exec/tools/disk-image.js';
import { attachLoop, attachPartitions, detachPartitions, type AttachedPartitions, type LoopRef } from '../exec/tools/loop.js';
import type { CommandRunner } from '../exec/runner.js';
import type { Step } from '../pipeline/pipeline.js';

export interface StorageStepState {
  attached?: AttachedPartitions;
  rootDevice?: string;
}

export function storageStepImplementations<S extends StorageStepState>(runner: CommandRunner, cur: { plan: BuildPlan }): Partial<Record<BuildStepId, Step<S>['run']>> {
  const st = cur.plan.storage;
  const steps: Partial<Record<BuildStepId, Step<S>['run']>> = {
    'boot.pygrub': async () => {
      const { plan } = cur;
      // pygrub reads the guest's own grub.cfg; templates ship none (their GRUB is installed per build).
      await new GuestRoot(plan.paths.mountDir).applyEdits([{ kind: 'mkdir', path: '/boot/grub', mode: 0o755 }, { kind: 'write', path: PYGRUB_CFG_PATH, content: plan.grubCfg, mode: 0o644 }]);
    },
  };
  if (st.backend === 'file' && st.layout === 'partitions') {
    steps['disk.create'] = async (c) => {
      for (const p of st.diskLayout.partitions) {
        const path = p.role === 'root' ? st.rootImage : (st.swapImage as string);
        const undo = await c.willUndo({ kind: 'file.remove', path });
        // Exclusive create: a file already there is someone else's and must survive our undo.
        await createSparseFile(path, p.sizeBytes).catch(async (e: unknown) => {
          if (e instanceof VmforgeError && e.code === 'CONFLICT') await undo.cancel();
          throw e;
        });
      }
    };
    steps['disk.attach'] = async (c, s) => {
      const loops: LoopRef[] = [];
      const devices: AttachedPartitions['devices'] = [];
      try {
        for (const p of st.diskLayout.partitions) {
          const file = p.role === 'root' ? st.rootImage : (st.swapImage as string);
          await c.willUndo({ kind: 'loop.detach-backing', backingFile: file });
          // The filesystem is made on the whole image: a loop device without offset, as xvda1 will be.
          const loop = await attachLoop(runner, { file });
          loops.push(loop);
          devices.push({ index: p.index, role: p.role, device: loop.device });
        }
      } catch (e) {
        await detachPartitions(runner, { strategy: 'loop-offset', loops }).catch(() => undefined);
        throw e;
      }
      s.attached = { devices, undo: { strategy: 'loop-offset', loops } };
      s.rootDevice = devices.find((d) => d.role === 'root')?.device as string;
    };
  }
  if (st.backend === 'lvm') {
    steps['disk.create'] = async (c) => {
      for (const v of st.lvm.volumes) {
        await c.willUndo({ kind: 'lv.remove', argv: v.undo });
        await runLvmArgv(runner, v.create, c.signal);
      }
      if (st.layout === 'whole-disk') await writeAt(st.lvm.volumes[0]!.device, 0, mbrBytes(cur.plan.layout, cur.plan.diskSignature));
    };
    steps['disk.attach'] = async (c, s) => {
      if (st.layout === 'whole-disk') {
        const dev = st.lvm.volumes[0]!.device;
        await c.willUndo({ kind: 'loop.detach-backing', backingFile: dev });
        s.attached = await attachPartitions(runner, { file: dev, layout: cur.plan.layout, strategy: cur.plan.partitionAccess });
      } else {
        // Each LV is already the device the guest sees as xvdaN.
        s.attached = { devices: st.lvm.volumes.map((v, i) => ({ index: i + 1, role: v.role === 'swap' ? 'swap' : 'root', device: v.device })), undo: { strategy: 'loop-offset', loops: [] } };
      }
      s.rootDevice = s.attached.devices.find((d) => d.role === 'root')?.device as string;
    };
  }
  return steps;
}
