/**
 * A network: an IPv4 pool plus what a VM attached to it needs (bridge, VLAN, DNS, optional IPv6 prefix) and
 * how its addresses reach guests (DHCP mode). Validation of `network create` input lives here, pure.
 */
import { invalidInput } from '../../errors.js';
import { validateDomainName, validateHostname } from '../names.js';
import { formatIpv4, parseIpv4 } from './ipv4.js';
import { formatIpv6, parseIpv6, parseIpv6Network } from './ipv6.js';
import { definePool, type PoolDef } from './pool.js';

/** How guests on the network get their addresses: statically only, a libvirt network's DHCP, or a dnsmasq hosts dir. */
export type DhcpMode = { mode: 'none' } | { mode: 'libvirt'; network: string } | { mode: 'dnsmasq'; dir: string };

export interface NetworkDef extends PoolDef {
  bridge: string;
  /** 802.1Q tag, or null for untagged. */
  vlan: number | null;
  dnsServers: string[];
  dnsZone: string | null;
  /** IPv6 prefix like fd00:20::/64, or null. */
  ipv6: string | null;
  dhcp: DhcpMode;
}

export interface NetworkInput {
  name: string;
  cidr: string;
  bridge: string;
  gateway?: string;
  range?: string;
  excludes?: string[];
  /** Comma-separated text (as on the command line) or a list. */
  dnsServers?: string | string[];
  dnsZone?: string;
  ipv6?: string;
  dhcp?: string;
  vlan?: string | number;
}

const BRIDGE_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const LIBVIRT_NET_RE = /^[A-Za-z0-9_.-]{1,64}$/;

export function validateNetworkName(name: string): string {
  return validateHostname(name, 'network name');
}

export function defineNetwork(input: NetworkInput): NetworkDef {
  const name = validateNetworkName(input.name);
  const w = `network '${name}'`;
  const pool = definePool({ ...input, name });
  if (!BRIDGE_RE.test(input.bridge) || input.bridge === '.' || input.bridge === '..') {
    throw invalidInput(`${w}: bridge '${input.bridge}' is not a valid interface name`, 'use 1-15 characters from A-Z a-z 0-9 _ . -, like br0');
  }
  return {
    ...pool,
    bridge: input.bridge,
    vlan: input.vlan === undefined ? null : parseVlan(input.vlan, w),
    dnsServers: parseDnsServers(input.dnsServers, w),
    dnsZone: input.dnsZone === undefined ? null : validateDomainName(input.dnsZone.toLowerCase(), `${w}: DNS zone`),
    ipv6: input.ipv6 === undefined ? null : parseIpv6Network(input.ipv6, `${w}: IPv6 network`).text,
    dhcp: input.dhcp === undefined ? { mode: 'none' } : parseDhcp(input.dhcp, w),
  };
}

function parseVlan(v: string | number, w: string): number {
  const n = typeof v === 'number' ? v : /^\d{1,4}$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 4094) throw invalidInput(`${w}: VLAN '${v}' is not a VLAN id`, 'give a number from 1 to 4094');
  return n;
}

function parseDnsServers(v: string | string[] | undefined, w: string): string[] {
  if (v === undefined) return [];
  const items = (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  const out: string[] = [];
  for (const s of items) {
    const norm = s.includes(':') ? formatIpv6(parseIpv6(s, `${w}: DNS server`)) : formatIpv4(parseIpv4(s, `${w}: DNS server`));
    if (!out.includes(norm)) out.push(norm);
  }
  return out;
}

/** 'none' | 'libvirt:NET' | 'dnsmasq:DIR' (DIR absolute). */
export function parseDhcp(text: string, w = 'network'): DhcpMode {
  const hint = "use none, libvirt:NETWORK (a libvirt network's DHCP) or dnsmasq:/ABSOLUTE/DIR (a dnsmasq dhcp-hostsdir)";
  if (text === 'none') return { mode: 'none' };
  const i = text.indexOf(':');
  const kind = i < 0 ? text : text.slice(0, i);
  const arg = i < 0 ? '' : text.slice(i + 1);
  if (kind === 'libvirt') {
    if (!LIBVIRT_NET_RE.test(arg)) throw invalidInput(`${w}: DHCP '${text}' needs a libvirt network name`, hint);
    return { mode: 'libvirt', network: arg };
  }
  if (kind === 'dnsmasq') {
    if (!arg.startsWith('/') || arg.split('/').includes('..') || /[\0\n]/.test(arg)) throw invalidInput(`${w}: DHCP '${text}' needs an absolute directory`, hint);
    return { mode: 'dnsmasq', dir: arg.length > 1 ? arg.replace(/\/+$/, '') : arg };
  }
  throw invalidInput(`${w}: DHCP mode '${text}' is unknown`, hint);
}

export function formatDhcp(d: DhcpMode): string {
  switch (d.mode) {
    case 'none':
      return 'none';
    case 'libvirt':
      return `libvirt:${d.network}`;
    case 'dnsmasq':
      return `dnsmasq:${d.dir}`;
  }
}

/** Two IPv4 CIDRs share at least one address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const span = (c: string) => {
    const [addr, p] = c.split('/');
    const first = parseIpv4(addr as string);
    return { first, last: first + 2 ** (32 - Number(p)) - 1 };
  };
  const x = span(a);
  const y = span(b);
  return x.first <= y.last && y.first <= x.last;
}
