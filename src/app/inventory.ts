import type { VmSpec } from '../core/model/spec.js';
import { parseStoredHostKeys, type StoredHostKey } from '../core/ssh/host-keys.js';
import { knownHostsLines } from '../core/ssh/known-hosts.js';
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
  /** The SSH host keys the build put in the guest (public halves, fingerprints); [] when it made none. */
  sshHostKeys: StoredHostKey[];
  /** The cloud-init NoCloud seed image (--cloud-init), or null. */
  cloudInitSeed: string | null;
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
    // One damaged record must not break `vm list`; `vm show` reports it.
    sshHostKeys: !row.ssh_host_keys ? [] : withTimings ? parseStoredHostKeys(row.ssh_host_keys) : tryParseHostKeys(row.ssh_host_keys),
    cloudInitSeed: row.cloud_init_seed ?? null,
    createdAt: row.created_at,
    timings,
  };
}

function tryParseHostKeys(json: string): StoredHostKey[] {
  try {
    return parseStoredHostKeys(json);
  } catch {
    return [];
  }
}

export async function listVms(ctx: AppContext): Promise<VmView[]> {
  return Promise.all((await ctx.vms.list()).map((r) => view(ctx, r, false)));
}

export async function showVm(ctx: AppContext, name: string): Promise<VmView> {
  const row = await ctx.vms.get(name);
  if (!row) throw notFound(`no VM named '${name}'`, "list VMs with 'vmforge vm list'");
  return view(ctx, row, true);
}

/**
 * known_hosts lines for a VM's stored host keys, for its name, its FQDN (the network's DNS zone, else the
 * configured one) and its addresses (the lease's, or the static --ip).
 */
export async function vmKnownHosts(ctx: AppContext, name: string): Promise<{ name: string; hosts: string[]; text: string }> {
  const row = await ctx.vms.get(name);
  if (!row) throw notFound(`no VM named '${name}'`, "list VMs with 'vmforge vm list'");
  const keys = row.ssh_host_keys ? parseStoredHostKeys(row.ssh_host_keys) : [];
  if (!keys.length) {
    throw notFound(`VM '${name}' has no SSH host keys on record`, 'it was built with --no-host-keys, before vmforge made host keys, or its guest has no SSH server');
  }
  const spec = JSON.parse(row.spec) as VmSpec;
  const network = spec.network === undefined ? undefined : await ctx.networks.get(spec.network);
  const zone = (network?.dnsZone ?? ctx.config.dns?.zone ?? '').replace(/\.$/, '');
  const lease = await ctx.leases.forVm(name);
  const hosts = [...new Set([name, ...(zone ? [`${name}.${zone}`] : []), ...(row.ip ? [row.ip] : []), ...(lease?.ipv6 ? [lease.ipv6] : [])])];
  return { name, hosts, text: knownHostsLines(hosts, keys) };
}
