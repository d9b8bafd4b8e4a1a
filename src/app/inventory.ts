import type { VmSpec } from '../core/model/spec.js';
import { notFound } from '../errors.js';
import type { VmRow } from '../store/vms.js';
import type { AppContext } from './context.js';

export interface VmView {
  name: string;
  uuid: string;
  status: string;
  /** Live libvirt state, or null when the domain is not defined (or libvirt is unreachable). */
  state: string | null;
  bundle: string;
  bundleSha256: string;
  cpus: number;
  memoryMiB: number;
  diskBytes: number;
  swapBytes: number;
  fs: string;
  diskPath: string;
  mac: string | null;
  ip: string | null;
  nic: string;
  net: string;
  consoleLog: string | null;
  bootSeconds: number | null;
  createdAt: string;
  timings: { step: string; title: string; durationMs: number; status: string }[];
}

function describeNic(spec: VmSpec): string {
  const n = spec.nic;
  switch (n.type) {
    case 'bridge':
      return `bridge ${n.bridge}`;
    case 'network':
      return `libvirt network ${n.network}`;
    case 'user':
      return 'user-mode (NAT inside QEMU)';
    case 'none':
      return 'no NIC';
  }
}

async function view(ctx: AppContext, row: VmRow, withTimings: boolean): Promise<VmView> {
  const spec = JSON.parse(row.spec) as VmSpec;
  const state = await ctx.hypervisor.state(row.domain_name).catch(() => null);
  let timings: VmView['timings'] = [];
  if (withTimings) {
    const job = await ctx.jobs.lastJob(row.name, 'build');
    if (job) {
      timings = (await ctx.jobs.timings(job.id)).map((t) => ({ step: t.step_id, title: t.title, durationMs: t.duration_ms, status: t.status }));
    }
  }
  return {
    name: row.name,
    uuid: row.uuid,
    status: row.status,
    state,
    bundle: row.bundle_ref,
    bundleSha256: row.bundle_sha256,
    cpus: spec.cpus,
    memoryMiB: spec.memoryMiB,
    diskBytes: spec.diskBytes,
    swapBytes: spec.swapBytes,
    fs: spec.fs,
    diskPath: row.disk_path,
    mac: row.mac,
    ip: row.ip,
    nic: describeNic(spec),
    net: spec.net.mode === 'dhcp' ? 'DHCP' : `static ${spec.net.address}/${spec.net.prefix}${spec.net.gateway ? ` via ${spec.net.gateway}` : ''}`,
    consoleLog: row.console_log,
    bootSeconds: row.boot_seconds,
    createdAt: row.created_at,
    timings,
  };
}

export async function listVms(ctx: AppContext): Promise<VmView[]> {
  return Promise.all((await ctx.vms.list()).map((r) => view(ctx, r, false)));
}

export async function showVm(ctx: AppContext, name: string): Promise<VmView> {
  const row = await ctx.vms.get(name);
  if (!row) throw notFound(`no VM named '${name}'`, "list VMs with 'vmforge vm list'");
  return view(ctx, row, true);
}
