/**
 * What a VM's DNS registration consists of: the A (and AAAA) record in the forward zone and the PTR records in
 * the reverse zones, each tagged with the zone an update for it goes to. Plain data, so the build can journal
 * it and destroy can remove exactly these records later.
 */
import { invalidInput } from '../../errors.js';
import { formatIpv4, parseIpv4 } from '../ipam/ipv4.js';
import { canonicalIpv6, hostFqdn, inZone, normalizeZone, reverseNameV4, reverseNameV6, reverseZoneV4, reverseZoneV6 } from './names.js';

export type DnsRrType = 'A' | 'AAAA' | 'PTR';

export interface DnsRecord {
  /** The zone the update is sent for (absolute, trailing dot). */
  zone: string;
  /** Owner name (absolute, trailing dot). */
  name: string;
  type: DnsRrType;
  /** A: dotted quad; AAAA: RFC 5952 text; PTR: absolute host name. */
  value: string;
  ttl: number;
}

export interface DnsRegistrationInput {
  /** 'web1' (put in `zone`) or 'web1.example.com'. */
  name: string;
  /** Forward zone, e.g. 'example.com'. */
  zone: string;
  ipv4?: string;
  /** Prefix of the IPv4 network; derives the reverse zone when `reverseZone` is not set. Default 24. */
  ipv4Prefix?: number;
  /** Explicit in-addr.arpa zone; null: no PTR for IPv4. */
  reverseZone?: string | null;
  ipv6?: string;
  /** Prefix of the IPv6 network; derives the ip6.arpa zone when `reverseZone6` is not set. Default 64. */
  ipv6Prefix?: number;
  /** Explicit ip6.arpa zone; null: no PTR for IPv6. */
  reverseZone6?: string | null;
  ttl: number;
}

export const MAX_TTL = 2_147_483_647;

/** The records to add for one host, forward zone first. */
export function planDnsRecords(input: DnsRegistrationInput): DnsRecord[] {
  if (!Number.isInteger(input.ttl) || input.ttl < 0 || input.ttl > MAX_TTL) {
    throw invalidInput(`DNS TTL ${input.ttl} is out of range`, `use whole seconds between 0 and ${MAX_TTL}`);
  }
  if (input.ipv4 === undefined && input.ipv6 === undefined) {
    throw invalidInput(`no address to register in DNS for '${input.name}'`, 'give the VM an IPv4 or IPv6 address');
  }
  const zone = normalizeZone(input.zone, 'dns.zone');
  const fqdn = hostFqdn(input.name, zone);
  const ttl = input.ttl;
  const out: DnsRecord[] = [];
  const ptrs: DnsRecord[] = [];
  if (input.ipv4 !== undefined) {
    const ip = formatIpv4(parseIpv4(input.ipv4, 'IPv4 address'));
    out.push({ zone, name: fqdn, type: 'A', value: ip, ttl });
    if (input.reverseZone !== null) {
      const rzone = input.reverseZone === undefined ? reverseZoneV4(ip, input.ipv4Prefix ?? 24) : normalizeZone(input.reverseZone, 'dns.reverseZone');
      ptrs.push(ptrRecord(rzone, reverseNameV4(ip), fqdn, ttl, ip, 'dns.reverseZone'));
    }
  }
  if (input.ipv6 !== undefined) {
    const ip = canonicalIpv6(input.ipv6);
    out.push({ zone, name: fqdn, type: 'AAAA', value: ip, ttl });
    if (input.reverseZone6 !== null) {
      const rzone = input.reverseZone6 === undefined ? reverseZoneV6(ip, input.ipv6Prefix ?? 64) : normalizeZone(input.reverseZone6, 'dns.reverseZone6');
      ptrs.push(ptrRecord(rzone, reverseNameV6(ip), fqdn, ttl, ip, 'dns.reverseZone6'));
    }
  }
  return [...out, ...ptrs];
}

function ptrRecord(zone: string, name: string, fqdn: string, ttl: number, ip: string, field: string): DnsRecord {
  if (!inZone(name, zone) || name === zone) {
    throw invalidInput(`${ip} is not in reverse zone ${zone}`, `set ${field} to the zone that holds ${name}, or fix the address`);
  }
  return { zone, name, type: 'PTR', value: fqdn, ttl };
}

/** 'web1.example.com. A 10.20.0.5' (how records are named in messages). */
export function formatRecord(r: { name: string; type: string; value: string }): string {
  return `${r.name} ${r.type} ${r.value}`;
}

/** Comparable form of a record value as dig prints it. */
export function normalizeValue(type: string, value: string): string {
  const v = value.trim();
  if (type === 'AAAA') {
    try {
      return canonicalIpv6(v);
    } catch {
      return v.toLowerCase();
    }
  }
  if (type === 'PTR' || type === 'CNAME') return v.toLowerCase().endsWith('.') ? v.toLowerCase() : `${v.toLowerCase()}.`;
  return v;
}

/** Records grouped by zone, zones in first-seen order (forward zone first). */
export function byZone<T extends { zone: string }>(records: readonly T[]): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const r of records) m.set(r.zone, [...(m.get(r.zone) ?? []), r]);
  return m;
}
