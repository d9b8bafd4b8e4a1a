/**
 * IPv4 address pools: a network's CIDR, gateway, allocation range and excluded addresses, and the choice of
 * an address from them. Pure: the caller supplies the addresses already leased (read inside the same database
 * transaction that records the new lease).
 *
 * Rules: an address is leasable when it is inside the CIDR and is not the network or broadcast address (a /31
 * has neither, RFC 3021), not the gateway and not excluded. Automatic allocation takes the lowest leasable,
 * unleased address inside the range; an explicit address only has to be inside the CIDR (so fixed addresses
 * can sit outside the dynamic range).
 */
import { conflict, invalidInput, VmforgeError } from '../../errors.js';
import { formatIpv4, parseIpv4, splitCidrText } from './ipv4.js';

export interface Interval {
  first: number;
  last: number;
}

/** A pool as stored: normalized text. */
export interface PoolDef {
  /** The network's name; every error names it. */
  name: string;
  /** Network address and prefix, like 10.20.0.0/24. */
  cidr: string;
  gateway: string;
  /** FIRST-LAST, inclusive. */
  range: string;
  /** Single addresses or FIRST-LAST ranges, as given (normalized). */
  excludes: string[];
}

/** A pool compiled to numbers. */
export interface Pool {
  name: string;
  network: number;
  prefix: number;
  gateway: number;
  range: Interval;
  /** Sorted and merged. */
  excludes: Interval[];
}

export interface PoolInput {
  name: string;
  cidr: string;
  gateway?: string;
  range?: string;
  excludes?: string[];
}

export type ReservedReason = 'outside-cidr' | 'network-address' | 'broadcast-address' | 'gateway' | 'excluded';

const REASON_TEXT: Record<ReservedReason, string> = {
  'outside-cidr': 'is outside the network',
  'network-address': 'is the network address',
  'broadcast-address': 'is the broadcast address',
  gateway: 'is the gateway',
  excluded: 'is excluded',
};

const where = (name: string) => `network '${name}'`;

/** '10.20.0.0/24' -> network number and prefix; host bits must be zero (10.20.0.5/24 is a typo, not a network). */
export function parseIpv4Network(text: string, what = 'CIDR'): { network: number; prefix: number } {
  const { address, prefix } = splitCidrText(text, what, '10.20.0.0/24');
  if (prefix < 1 || prefix > 32) throw invalidInput(`${what}: prefix /${prefix} is out of range`, 'use a prefix between /1 and /32');
  const addr = parseIpv4(address, what);
  const network = addr - (addr % 2 ** (32 - prefix));
  if (network !== addr) throw invalidInput(`${what}: '${text}' has host bits set`, `did you mean ${formatIpv4(network)}/${prefix}?`);
  return { network, prefix };
}

/** The whole CIDR as an interval. */
export function cidrInterval(network: number, prefix: number): Interval {
  return { first: network, last: network + 2 ** (32 - prefix) - 1 };
}

/** The usable host addresses: all of a /31 or /32, else without the network and broadcast addresses. */
export function hostInterval(network: number, prefix: number): Interval {
  const all = cidrInterval(network, prefix);
  return prefix >= 31 ? all : { first: all.first + 1, last: all.last - 1 };
}

/** 'A-B' or a single 'A' -> an interval (A <= B). */
export function parseRange(text: string, what = 'range'): Interval {
  const parts = text.trim().split('-');
  if (parts.length > 2 || parts.some((p) => p.trim() === '')) {
    throw invalidInput(`${what}: '${text}' is not an address or a range`, 'write FIRST-LAST, like 10.20.0.100-10.20.0.199, or one address');
  }
  const first = parseIpv4((parts[0] as string).trim(), what);
  const last = parts.length === 2 ? parseIpv4((parts[1] as string).trim(), what) : first;
  if (first > last) throw invalidInput(`${what}: '${text}' ends before it starts`, `write the lower address first: ${formatIpv4(last)}-${formatIpv4(first)}`);
  return { first, last };
}

export function formatRange(r: Interval): string {
  return r.first === r.last ? formatIpv4(r.first) : `${formatIpv4(r.first)}-${formatIpv4(r.last)}`;
}

/**
 * Validates a pool and fills in its defaults (gateway: the first host; range: the gateway's successor to the
 * last host). Range and excludes must lie inside the CIDR; the range may include the gateway or excluded
 * addresses (they are skipped), but must leave at least one leasable address.
 */
export function definePool(input: PoolInput): PoolDef {
  const w = where(input.name);
  const { network, prefix } = parseIpv4Network(input.cidr, `${w}: CIDR`);
  const cidr = `${formatIpv4(network)}/${prefix}`;
  const all = cidrInterval(network, prefix);
  const hosts = hostInterval(network, prefix);
  if (prefix === 32) {
    throw invalidInput(`${w}: ${cidr} holds a single address, which leaves none for VMs besides the gateway`, 'use a /31 (gateway and one VM) or a larger network');
  }
  const inside = (n: number) => n >= all.first && n <= all.last;

  let gateway = hosts.first;
  if (input.gateway !== undefined) {
    gateway = parseIpv4(input.gateway, `${w}: gateway`);
    if (!inside(gateway)) throw invalidInput(`${w}: gateway ${formatIpv4(gateway)} is outside ${cidr}`, `pick an address inside ${cidr}, like ${formatIpv4(hosts.first)}`);
    if (gateway < hosts.first || gateway > hosts.last) {
      throw invalidInput(`${w}: gateway ${formatIpv4(gateway)} ${gateway === all.first ? 'is the network address' : 'is the broadcast address'} of ${cidr}`, `pick a host address, like ${formatIpv4(hosts.first)}`);
    }
  }

  let range: Interval;
  if (input.range !== undefined) {
    range = parseRange(input.range, `${w}: range`);
    if (!inside(range.first) || !inside(range.last)) {
      throw invalidInput(`${w}: range ${formatRange(range)} is not inside ${cidr} (${formatRange(all)})`, `give a range between ${formatIpv4(hosts.first)} and ${formatIpv4(hosts.last)}`);
    }
  } else {
    range = { first: gateway + 1, last: hosts.last };
    if (range.first > range.last) {
      throw invalidInput(`${w}: no addresses after the gateway ${formatIpv4(gateway)} in ${cidr}`, 'give --range explicitly, or a lower --gateway');
    }
  }

  const excludes: string[] = [];
  for (const text of input.excludes ?? []) {
    const ex = parseRange(text, `${w}: exclude`);
    if (!inside(ex.first) || !inside(ex.last)) {
      throw invalidInput(`${w}: exclude ${formatRange(ex)} is not inside ${cidr} (${formatRange(all)})`, 'exclude only addresses of this network');
    }
    const norm = formatRange(ex);
    if (!excludes.includes(norm)) excludes.push(norm);
  }

  const def: PoolDef = { name: input.name, cidr, gateway: formatIpv4(gateway), range: `${formatIpv4(range.first)}-${formatIpv4(range.last)}`, excludes };
  if (poolCapacity(compilePool(def)) === 0) {
    throw invalidInput(
      `${w}: range ${def.range} has no leasable address once the gateway${excludes.length ? ', excludes' : ''} and the network/broadcast addresses are left out`,
      'widen --range or remove some --exclude',
    );
  }
  return def;
}

/** Compiles a stored (already validated) pool. */
export function compilePool(def: PoolDef): Pool {
  const { network, prefix } = parseIpv4Network(def.cidr);
  return {
    name: def.name,
    network,
    prefix,
    gateway: parseIpv4(def.gateway),
    range: parseRange(def.range),
    excludes: mergeIntervals(def.excludes.map((e) => parseRange(e))),
  };
}

export function mergeIntervals(list: Interval[]): Interval[] {
  const sorted = [...list].sort((a, b) => a.first - b.first);
  const out: Interval[] = [];
  for (const iv of sorted) {
    const prev = out[out.length - 1];
    if (prev && iv.first <= prev.last + 1) prev.last = Math.max(prev.last, iv.last);
    else out.push({ ...iv });
  }
  return out;
}

/** Why `ip` can never be leased from this pool, or null when it can (leases aside). */
export function reservedReason(pool: Pool, ip: number): ReservedReason | null {
  const all = cidrInterval(pool.network, pool.prefix);
  if (ip < all.first || ip > all.last) return 'outside-cidr';
  if (pool.prefix < 31 && ip === all.first) return 'network-address';
  if (pool.prefix < 31 && ip === all.last) return 'broadcast-address';
  if (ip === pool.gateway) return 'gateway';
  if (pool.excludes.some((e) => ip >= e.first && ip <= e.last)) return 'excluded';
  return null;
}

/** The leasable intervals of the range: range ∩ hosts, minus the gateway and excludes. Sorted, disjoint. */
export function leasableIntervals(pool: Pool): Interval[] {
  const hosts = hostInterval(pool.network, pool.prefix);
  const start = Math.max(pool.range.first, hosts.first);
  const end = Math.min(pool.range.last, hosts.last);
  if (start > end) return [];
  const holes = mergeIntervals([...pool.excludes, { first: pool.gateway, last: pool.gateway }]);
  const out: Interval[] = [];
  let cur = start;
  for (const h of holes) {
    if (h.last < cur) continue;
    if (h.first > end) break;
    if (h.first > cur) out.push({ first: cur, last: Math.min(h.first - 1, end) });
    cur = h.last + 1;
    if (cur > end) break;
  }
  if (cur <= end) out.push({ first: cur, last: end });
  return out;
}

/** How many addresses automatic allocation can hand out in total. */
export function poolCapacity(pool: Pool): number {
  return leasableIntervals(pool).reduce((n, iv) => n + iv.last - iv.first + 1, 0);
}

/** The lowest leasable address of the range not in `taken`, or null when the pool is exhausted. */
export function lowestFree(pool: Pool, taken: Iterable<string>): string | null {
  const used = new Set<number>();
  for (const t of taken) used.add(parseIpv4(t));
  for (const iv of leasableIntervals(pool)) {
    for (let ip = iv.first; ip <= iv.last; ip++) if (!used.has(ip)) return formatIpv4(ip);
  }
  return null;
}

/**
 * Validates an explicitly requested address: parsed, inside the CIDR, not reserved, not leased (`taken` maps
 * leased addresses to their holders). Returns it normalized. Errors name the pool and the reason.
 */
export function checkRequestedIp(pool: Pool, text: string, taken: ReadonlyMap<string, string>): string {
  const w = where(pool.name);
  const ip = parseIpv4(text, `${w}: requested address`);
  const all = cidrInterval(pool.network, pool.prefix);
  const reason = reservedReason(pool, ip);
  const cidr = `${formatIpv4(pool.network)}/${pool.prefix}`;
  if (reason === 'outside-cidr') {
    throw invalidInput(`${w}: ${formatIpv4(ip)} ${REASON_TEXT[reason]} ${cidr} (${formatRange(all)})`, 'pick an address inside the network, or leave the address out to get the lowest free one');
  }
  if (reason) throw invalidInput(`${w}: ${formatIpv4(ip)} ${REASON_TEXT[reason]} and cannot be leased`, 'pick another address, or leave the address out to get the lowest free one');
  const norm = formatIpv4(ip);
  const holder = taken.get(norm);
  if (holder !== undefined) {
    throw conflict(`${w}: ${norm} is already leased to VM ${holder}`, `pick another address (see 'vmforge network show ${pool.name}'), or leave it out to get the lowest free one`);
  }
  return norm;
}

export function poolExhausted(pool: Pool, leased: number): VmforgeError {
  return new VmforgeError('POOL_EXHAUSTED', `network '${pool.name}': no free address left in range ${formatRange(pool.range)} (${leased} leased, capacity ${poolCapacity(pool)})`, {
    hint: `release addresses (vmforge vm destroy NAME), or create a larger network; see 'vmforge network show ${pool.name}'`,
  });
}
