/** Use cases behind `vmforge network ...`: views with pool usage, shaped for --json. */
import { compilePool, poolCapacity, reservedReason } from '../core/ipam/pool.js';
import { parseIpv4 } from '../core/ipam/ipv4.js';
import { formatDhcp, type NetworkInput } from '../core/ipam/network.js';
import type { Lease, Network } from '../store/networks.js';
import type { AppContext } from './context.js';
import { z } from 'zod';

/** `POST /v1/networks`: the `network create` flags as JSON; the checks (and their messages) are createNetwork's. */
export const networkCreateRequestSchema = z
  .object({
    name: z.string().max(63).describe('network name (lower-case letters, digits, -)'),
    cidr: z.string().max(50).describe('network address and prefix, like 10.20.0.0/24'),
    bridge: z.string().max(15).describe('host bridge the VMs attach to'),
    gateway: z.string().max(50).optional().describe('default: the first address'),
    range: z.string().max(100).optional().describe('FIRST-LAST addresses handed out (default: the whole subnet)'),
    excludes: z.array(z.string().max(100)).max(1000).optional().describe('addresses or FIRST-LAST ranges never handed out'),
    dnsServers: z.array(z.string().max(50)).max(3).optional(),
    dnsZone: z.string().max(253).optional(),
    ipv6: z.string().max(50).optional().describe('IPv6 prefix like fd00:20::/64'),
    dhcp: z.string().max(300).optional().describe('none, libvirt:NET or dnsmasq:DIR'),
    vlan: z.number().int().min(1).max(4094).optional(),
  })
  .strict();

export interface NetworkView extends Network {
  /** Addresses automatic allocation can hand out in total (range minus gateway, excludes, network/broadcast). */
  capacity: number;
  /** Leases held in this network (including fixed addresses outside the range). */
  leased: number;
  /** Addresses automatic allocation can still hand out. */
  free: number;
  /** `dhcp` as text: none, libvirt:NET, dnsmasq:DIR */
  dhcpText: string;
}

export interface NetworkDetail extends NetworkView {
  leases: Pick<Lease, 'vmName' | 'ipv4' | 'ipv6' | 'mac' | 'createdAt'>[];
}

function view(n: Network, leases: Lease[]): NetworkView {
  const pool = compilePool(n);
  const capacity = poolCapacity(pool);
  // Fixed addresses outside the range (or reserved ones) do not use up what automatic allocation can give.
  const used = leases.filter((l) => {
    const ip = parseIpv4(l.ipv4);
    return ip >= pool.range.first && ip <= pool.range.last && reservedReason(pool, ip) === null;
  }).length;
  return { ...n, capacity, leased: leases.length, free: capacity - used, dhcpText: formatDhcp(n.dhcp) };
}

export async function createNetwork(ctx: AppContext, input: NetworkInput): Promise<NetworkView> {
  return view(await ctx.networks.create(input), []);
}

export async function listNetworks(ctx: AppContext): Promise<NetworkView[]> {
  const nets = await ctx.networks.list();
  const views: NetworkView[] = [];
  for (const n of nets) views.push(view(n, await ctx.leases.inNetwork(n.name)));
  return views;
}

export async function showNetwork(ctx: AppContext, name: string): Promise<NetworkDetail> {
  const n = await ctx.networks.require(name);
  const leases = await ctx.leases.inNetwork(name);
  return { ...view(n, leases), leases: leases.map((l) => ({ vmName: l.vmName, ipv4: l.ipv4, ipv6: l.ipv6, mac: l.mac, createdAt: l.createdAt })) };
}

export async function removeNetwork(ctx: AppContext, name: string): Promise<void> {
  await ctx.networks.remove(name);
}
