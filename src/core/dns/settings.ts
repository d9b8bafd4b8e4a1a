/**
 * From the `dns` config section and a VM's addresses to the records to register. Mirrors the config fields
 * so core does not depend on the config loader.
 */
import { planDnsRecords, type DnsRecord } from './records.js';

export interface DnsSettings {
  server: string;
  zone: string;
  reverseZone?: string | undefined;
  reverseZone6?: string | undefined;
  keyFile: string;
  ttl: number;
}

export interface HostAddresses {
  /** VM/host name ('web1') or a name below the zone. */
  name: string;
  /** IPv4 address, or CIDR 'ADDR/PREFIX' (the prefix then derives the reverse zone). */
  ipv4?: string | undefined;
  /** IPv6 address, or CIDR 'ADDR/PREFIX'. */
  ipv6?: string | undefined;
}

/** The records for a VM: A (+AAAA) in settings.zone, PTR in the configured or derived reverse zones. */
export function dnsRecordsFor(settings: DnsSettings, host: HostAddresses): DnsRecord[] {
  const v4 = splitCidr(host.ipv4);
  const v6 = splitCidr(host.ipv6);
  return planDnsRecords({
    name: host.name,
    zone: settings.zone,
    ttl: settings.ttl,
    ...(v4 ? { ipv4: v4.address, ...(v4.prefix === undefined ? {} : { ipv4Prefix: v4.prefix }) } : {}),
    ...(v6 ? { ipv6: v6.address, ...(v6.prefix === undefined ? {} : { ipv6Prefix: v6.prefix }) } : {}),
    ...(settings.reverseZone ? { reverseZone: settings.reverseZone } : {}),
    ...(settings.reverseZone6 ? { reverseZone6: settings.reverseZone6 } : {}),
  });
}

function splitCidr(text: string | undefined): { address: string; prefix?: number } | null {
  if (text === undefined) return null;
  const [address = '', prefix] = text.trim().split('/');
  return prefix === undefined ? { address } : { address, prefix: /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN };
}
