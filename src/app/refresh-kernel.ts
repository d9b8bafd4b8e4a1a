/**
 * vm refresh-kernel: after the guest installed a new kernel, copy its newest kernel and initrd to the host copies
 * a direct-kernel-boot domain boots (the same paths, so the domain XML does not change). The guest's root is
 * attached read-only and mounted without journal replay: the guest may be running and owns its filesystem.
 */
import { mkdir, open, rmdir } from 'node:fs/promises';
import { listKernels } from '../bundles/inspect-root.js';
import { layoutFromMbr } from '../core/disk/mbr-read.js';
import { bootFilePaths } from '../core/plan/build-plan.js';
import type { FsType } from '../core/model/spec.js';
import { invalidInput, notFound } from '../errors.js';
import { GuestRoot } from '../exec/guestfs/guest-root.js';
import { attachLoop, detachLoop } from '../exec/tools/loop.js';
import { mount, privateMountRoot, umount } from '../exec/tools/mount.js';
import type { AppContext } from './context.js';
import { copyOutOfGuest } from './kernel-files.js';

export interface RefreshKernelResult {
  name: string;
  kernelVersion: string;
  kernel: { from: string; to: string; bytes: number };
  initrd: { from: string; to: string; bytes: number } | null;
  /** The running domain keeps its old kernel until it is restarted. */
  restartNeeded: boolean;
}

export async function refreshKernel(ctx: AppContext, name: string): Promise<RefreshKernelResult> {
  const row = await ctx.vms.get(name);
  if (!row) throw notFound(`no VM named '${name}' in the inventory`, "list VMs with 'vmforge vm list'");
  const spec = JSON.parse(row.spec) as { boot?: string; fs: FsType };
  if (spec.boot !== 'kernel') throw invalidInput(`VM ${name} boots with GRUB from its own disk; there is no kernel copy to refresh`, 'only VMs built with --boot kernel have one');
  const root = await rootPartition(row.disk_path);
  const target = `${ctx.config.runDir}/mnt/${name}.refresh`;
  const files = bootFilePaths(ctx.config.storage.dir, name);
  await privateMountRoot(ctx.config.runDir);
  await mkdir(target, { recursive: true, mode: 0o700 });
  const loop = await attachLoop(ctx.runner, { file: row.disk_path, offsetBytes: root.offsetBytes, sizeBytes: root.sizeBytes, readOnly: true });
  try {
    await mount(ctx.runner, { device: loop.device, target, fsType: spec.fs, options: ['ro', spec.fs === 'xfs' ? 'norecovery' : 'noload'] });
    try {
      const guest = new GuestRoot(target);
      const newest = (await listKernels(guest))[0];
      if (!newest) throw invalidInput(`the guest of ${name} has no kernel in /boot`);
      const kernel = { from: newest.kernel, to: files.kernel, bytes: await copyOutOfGuest(guest, newest.kernel, files.kernel) };
      const initrd = newest.initrd ? { from: newest.initrd, to: files.initrd, bytes: await copyOutOfGuest(guest, newest.initrd, files.initrd) } : null;
      const state = await ctx.hypervisor.state(row.domain_name).catch(() => null);
      return { name, kernelVersion: newest.version, kernel, initrd, restartNeeded: state === 'running' };
    } finally {
      await umount(ctx.runner, target);
    }
  } finally {
    await detachLoop(ctx.runner, loop);
    await rmdir(target).catch(() => undefined);
  }
}

async function rootPartition(diskPath: string): Promise<{ offsetBytes: number; sizeBytes: number }> {
  const fh = await open(diskPath, 'r');
  try {
    const sector = Buffer.alloc(512);
    await fh.read(sector, 0, 512, 0);
    const layout = layoutFromMbr(sector, (await fh.stat()).size);
    const root = layout.partitions.find((p) => p.role === 'root');
    if (!root) throw invalidInput(`${diskPath} has no root partition vmforge knows`);
    return root;
  } finally {
    await fh.close();
  }
}
