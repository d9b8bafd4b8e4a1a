/**
 * vm destroy: stop and undefine the domain, release and remove the disk, remove the console files, forget
 * the VM. Every step is idempotent, so a half-built VM or an interrupted destroy is finished by running it
 * again.
 */
import { rm } from 'node:fs/promises';
import { notFound, VmforgeError } from '../errors.js';
import type { EventSink } from '../pipeline/events.js';
import { parseFault } from '../pipeline/fault.js';
import { runPipeline, type Step, type StepTiming } from '../pipeline/pipeline.js';
import type { AppContext } from './context.js';
import { withHostLock } from './mutating.js';
import { undoRegistry } from './undo-executors.js';
import type { UndoRegistry, DnsTarget } from '../pipeline/undo.js';
import type { DnsRecord } from '../core/dns/index.js';
import type { DhcpReservation } from '../core/dhcp/reservation.js';
import type { DhcpMode } from '../core/ipam/network.js';
import type { VmRow } from '../store/vms.js';
import { bootFilePaths } from '../core/plan/build-plan.js';
import { loggedSink } from './log.js';
import { planStorageDestroy, type StorageDestroyPlan } from '../core/plan/storage-plan.js';
import type { VmSpec } from '../core/model/spec.js';

export interface DestroyResult {
  name: string;
  dryRun?: boolean;
  steps?: { id: string; title: string }[];
  removed: { domain: boolean; disk: string | null };
  keptDisk?: string;
  timings: StepTiming[];
}

export interface DestroyOptions {
  emit?: EventSink;
  signal?: AbortSignal;
  /** Leave the disk image in place (everything else goes). */
  keepDisk?: boolean;
  /** List the steps; change nothing. */
  dryRun?: boolean;
  /** A job row the caller made already (the API's); default: a new one. */
  jobId?: number;
}

export async function destroyVm(ctx: AppContext, name: string, opts: DestroyOptions = {}): Promise<DestroyResult> {
  const emit = loggedSink(ctx.log(), { kind: 'destroy', vm: name }, opts.emit ?? (() => {}));
  const signal = opts.signal ?? new AbortController().signal;
  await ctx.hypervisor.ping();
  // A build that died half-way is undone by its own journal first (under the host lock).
  if (!opts.dryRun) await withHostLock(ctx, { emit, signal }, async () => {});
  const row = await ctx.vms.get(name);
  if (!row) {
    const hint = (await ctx.hypervisor.exists(name).catch(() => false))
      ? `libvirt has a domain '${name}' that vmforge did not make; remove it with virsh if you mean to`
      : "list VMs with 'vmforge vm list'";
    throw notFound(`no VM named '${name}' in the inventory`, hint);
  }
  const undo = undoRegistry(ctx);
  const domainExisted = await ctx.hypervisor.exists(row.domain_name);
  const mountDir = `${ctx.config.runDir}/mnt/${name}`;
  const storage = planStorageDestroy({ ...(JSON.parse(row.spec) as VmSpec), name }, ctx.config.storage.dir, row.disk_path);
  const steps: Step<unknown>[] = [
    { id: 'domain.stop', title: 'Stop the domain', run: () => ctx.hypervisor.destroy(row.domain_name) },
    { id: 'domain.undefine', title: 'Undefine the domain', run: () => ctx.hypervisor.undefine(row.domain_name) },
    {
      id: 'disk.release',
      title: 'Release mounts and loop devices of the disk',
      run: async () => {
        await undo['mount.umount']({ kind: 'mount.umount', target: mountDir });
        await undo['dir.remove']({ kind: 'dir.remove', path: mountDir });
        for (const backingFile of storage.loopBackings) await undo['loop.detach-backing']({ kind: 'loop.detach-backing', backingFile });
      },
    },
    ...(opts.keepDisk ? [] : storageRemoveSteps(storage, undo)),
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
    ...bootFileSteps(row, ctx.config.storage.dir),
    ...(row.cloud_init_seed ? [{ id: 'cloudinit.remove', title: 'Remove the cloud-init seed image', run: () => rm(row.cloud_init_seed as string, { force: true }) }] : []),
    ...identitySteps(row, undo),
    { id: 'lease.release', title: 'Release the address lease', run: () => undo['lease.release']({ kind: 'lease.release', vm: name }) },
    { id: 'inventory.forget', title: 'Forget the VM', run: () => ctx.vms.remove(name) },
  ];
  if (opts.dryRun) return { name, dryRun: true, steps: steps.map((x) => ({ id: x.id, title: x.title })), removed: { domain: false, disk: null }, timings: [] };
  await ctx.vms.setStatus(name, 'destroying');
  const jobId = opts.jobId ?? (await ctx.jobs.start('destroy', name));
  const timings = await runPipeline({
    steps,
    state: undefined,
    jobs: ctx.jobs,
    jobId,
    undo,
    emit,
    signal,
    fault: parseFault(process.env.VMFORGE_FAULT),
  }).catch((e: unknown) => {
    // Every step is idempotent: running destroy again finishes what this run did not.
    if (!(e instanceof VmforgeError) || e.hint) throw e;
    const again = new VmforgeError(e.code, e.message, { hint: `the VM is marked 'destroying'; run 'vmforge vm destroy ${name}' again to finish`, cause: e });
    again.undoErrors = e.undoErrors;
    throw again;
  });
  return { name, removed: { domain: domainExisted, disk: opts.keepDisk ? null : row.disk_path }, ...(opts.keepDisk ? { keptDisk: row.disk_path } : {}), timings };
}

/** Image files, or (LVM) the planned lvremove argv: never `rm` on a device path. */
function storageRemoveSteps(storage: StorageDestroyPlan, undo: UndoRegistry): Step<unknown>[] {
  if (storage.lvremove.length) {
    return [
      {
        id: 'disk.remove',
        title: `Remove the logical volumes: ${storage.lvremove.map((a) => a.join(' ')).join('; ')}`,
        run: async () => {
          for (const argv of storage.lvremove) await undo['lv.remove']({ kind: 'lv.remove', argv });
        },
      },
    ];
  }
  return [
    {
      id: 'disk.remove',
      title: storage.files.length > 1 ? `Remove the disk images (${storage.files.map((f) => f.split('/').at(-1)).join(', ')})` : 'Remove the disk image',
      run: async () => {
        for (const f of storage.files) await rm(f, { force: true });
      },
    },
  ];
}

/** A direct-kernel-boot VM's kernel and initrd copies on the host. */
function bootFileSteps(row: VmRow, storageDir: string): Step<unknown>[] {
  const spec = JSON.parse(row.spec) as { boot?: string };
  if (spec.boot !== 'kernel') return [];
  const files = bootFilePaths(storageDir, row.name);
  return [{ id: 'boot.remove', title: 'Remove the kernel and initrd copies', run: async () => { await rm(files.kernel, { force: true }); await rm(files.initrd, { force: true }); } }];
}

/** DNS records and the DHCP entry the build recorded as its own: exactly those are removed. */
function identitySteps(row: VmRow, undo: UndoRegistry): Step<unknown>[] {
  const steps: Step<unknown>[] = [];
  if (row.dns_records) {
    const d = JSON.parse(row.dns_records) as { settings: DnsTarget; records: DnsRecord[] };
    if (d.records.length) {
      steps.push({
        id: 'dns.unregister',
        title: `Remove DNS records (${d.records.map((r) => r.type).join(', ')})`,
        run: () => undo['dns.remove']({ kind: 'dns.remove', settings: d.settings, records: d.records }),
      });
    }
  }
  if (row.dhcp) {
    const d = JSON.parse(row.dhcp) as { dhcp: DhcpMode; uri: string; reservation: DhcpReservation };
    steps.push({ id: 'dhcp.release', title: 'Remove the DHCP reservation', run: () => undo['dhcp.release']({ kind: 'dhcp.release', ...d }) });
  }
  return steps;
}
