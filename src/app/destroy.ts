/**
 * vm destroy: stop and undefine the domain, release and remove the disk, remove the console files, forget
 * the VM. Every step is idempotent, so a half-built VM or an interrupted destroy is finished by running it
 * again.
 */
import { rm } from 'node:fs/promises';
import { notFound } from '../errors.js';
import type { EventSink } from '../pipeline/events.js';
import { parseFault } from '../pipeline/fault.js';
import { runPipeline, type Step, type StepTiming } from '../pipeline/pipeline.js';
import type { AppContext } from './context.js';
import { recoverOrphans } from './recover.js';
import { undoRegistry } from './undo-executors.js';
import { loggedSink } from './log.js';

export interface DestroyResult {
  name: string;
  removed: { domain: boolean; disk: string };
  timings: StepTiming[];
}

export async function destroyVm(ctx: AppContext, name: string, opts: { emit?: EventSink; signal?: AbortSignal } = {}): Promise<DestroyResult> {
  const emit = loggedSink(ctx.log(), { kind: 'destroy', vm: name }, opts.emit ?? (() => {}));
  await ctx.hypervisor.ping();
  // A build that died half-way is undone by its own journal first.
  await recoverOrphans(ctx, emit);
  const row = await ctx.vms.get(name);
  if (!row) {
    const hint = (await ctx.hypervisor.exists(name).catch(() => false))
      ? `libvirt has a domain '${name}' that vmforge did not make; remove it with virsh if you mean to`
      : "list VMs with 'vmforge vm list'";
    throw notFound(`no VM named '${name}' in the inventory`, hint);
  }
  await ctx.vms.setStatus(name, 'destroying');
  const undo = undoRegistry(ctx);
  const domainExisted = await ctx.hypervisor.exists(row.domain_name);
  const mountDir = `${ctx.config.runDir}/mnt/${name}`;
  const steps: Step<unknown>[] = [
    { id: 'domain.stop', title: 'Stop the domain', run: () => ctx.hypervisor.destroy(row.domain_name) },
    { id: 'domain.undefine', title: 'Undefine the domain', run: () => ctx.hypervisor.undefine(row.domain_name) },
    {
      id: 'disk.release',
      title: 'Release mounts and loop devices of the disk',
      run: async () => {
        await undo['mount.umount']({ kind: 'mount.umount', target: mountDir });
        await undo['dir.remove']({ kind: 'dir.remove', path: mountDir });
        await undo['loop.detach-backing']({ kind: 'loop.detach-backing', backingFile: row.disk_path });
      },
    },
    { id: 'disk.remove', title: 'Remove the disk image', run: () => rm(row.disk_path, { force: true }) },
    {
      id: 'console.remove',
      title: 'Remove console log and socket',
      run: async () => {
        if (row.console_log) {
          await rm(row.console_log, { force: true });
          await rm(row.console_log.replace(/\.log$/, '.sock'), { force: true });
        }
      },
    },
    { id: 'inventory.forget', title: 'Forget the VM', run: () => ctx.vms.remove(name) },
  ];
  const jobId = await ctx.jobs.start('destroy', name);
  const timings = await runPipeline({
    steps,
    state: undefined,
    jobs: ctx.jobs,
    jobId,
    undo,
    emit,
    signal: opts.signal ?? new AbortController().signal,
    fault: parseFault(process.env.VMFORGE_FAULT),
  });
  return { name, removed: { domain: domainExisted, disk: row.disk_path }, timings };
}
