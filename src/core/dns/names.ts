/**
 * DNS names for registration: absolute, lower-case names with a trailing dot (what nsupdate and dig print),
 * zone membership, and reverse names (in-addr.arpa / ip6.arpa) with the reverse zone derived from a prefix.
 */
import { invalidInput } from '../../errors.js';
import { formatIpv4, parseIpv4 } from '../ipam/ipv4.js';

const MAX_NAME = 253;
// Host labels are LDH (RFC 1123); zone labels may also hold '_' (e.g. _msdcs), never used for hosts here.
const HOST_LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const ZONE_LABEL_RE = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** 'Example.COM' or 'example.com.' -> 'example.com.'; throws INVALID_INPUT naming `what`. */
export function normalizeZone(zone: string, what = 'DNS zone'): string {
  const z = zone.trim().toLowerCase().replace(/\.$/, '');
  if (!z) throw invalidInput(`${what} is empty`, "write it like 'example.com'");
  if (z.length > MAX_NAME) throw invalidInput(`${what} '${zone}' is longer than ${MAX_NAME} characters`);
  for (const label of z.split('.')) {
    if (!ZONE_LABEL_RE.test(label)) {
      throw invalidInput(`${what} '${zone}' has an invalid label '${label}'`, "labels are 1-63 of a-z, 0-9, '-' and '_', separated by '.'");
    }
  }
  return `${z}.`;
}

/** True when `name` is `zone` or below it (both normalized, trailing dot). */
export function inZone(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/**
 * The absolute host name for `name` in `zone`: a short name ('web1') is put in the zone, a dotted one must
 * already be below it. The zone apex itself is refused: a VM never owns the zone's own name.
 */
export function hostFqdn(name: string, zone: string): string {
  const z = normalizeZone(zone);
  const raw = name.trim().toLowerCase();
  if (!raw) throw invalidInput('DNS host name is empty');
  const fqdn = raw.endsWith('.') ? raw : raw.includes('.') ? `${raw}.` : `${raw}.${z}`;
  if (fqdn.length - 1 > MAX_NAME) throw invalidInput(`DNS name '${name}' is longer than ${MAX_NAME} characters`);
  if (!inZone(fqdn, z) || fqdn === z) {
    throw invalidInput(`DNS name '${fqdn}' is not below zone '${z}'`, `use a short name or a name ending in .${z.slice(0, -1)}`);
  }
  for (const label of fqdn.slice(0, -z.length - 1).split('.')) {
    if (!HOST_LABEL_RE.test(label)) {
      throw invalidInput(`DNS name '${name}' has an invalid label '${label}'`, "host labels are 1-63 of a-z, 0-9 and '-', not starting or ending with '-'");
    }
  }
  return fqdn;
}

/** '10.20.0.5' -> '5.0.20.10.in-addr.arpa.' */
export function reverseNameV4(ip: string): string {
  return `${formatIpv4(parseIpv4(ip, 'IPv4 address')).split('.').reverse().join('.')}.in-addr.arpa.`;
}

/**
 * The reverse zone for an IPv4 prefix, on an octet boundary (prefix rounded down): /24 -> 3 octets, /20 -> 2.
 * Longer prefixes than /24 still use the /24 zone: RFC 2317 classless delegation is configured explicitly.
 */
export function reverseZoneV4(ip: string, prefix: number): string {
  if (!Number.isInteger(prefix) || prefix < 8 || prefix > 32) {
    throw invalidInput(`IPv4 prefix /${prefix} cannot name a reverse zone`, 'use a prefix between /8 and /32, or set dns.reverseZone');
  }
  const octets = formatIpv4(parseIpv4(ip, 'IPv4 address')).split('.').slice(0, Math.min(3, Math.floor(prefix / 8)));
  return `${octets.reverse().join('.')}.in-addr.arpa.`;
}

/** '2001:db8::5' -> 32 lower-case hex nibbles, most significant first. */
export function ipv6Nibbles(ip: string): string {
  const text = ip.trim().toLowerCase();
  const bad = () => invalidInput(`'${ip}' is not an IPv6 address`, 'write it like 2001:db8::5');
  if (!/^[0-9a-f:.]+$/.test(text) || text.split('::').length > 2) throw bad();
  const groupsOf = (part: string): string[] => {
    if (!part) return [];
    const gs = part.split(':');
    const last = gs[gs.length - 1] as string;
    if (last.includes('.')) {
      const v4 = parseIpv4(last, 'IPv6 address');
      gs.splice(gs.length - 1, 1, Math.floor(v4 / 65536).toString(16), (v4 % 65536).toString(16));
    }
    return gs;
  };
  const [head = '', tail] = text.split('::');
  const h = groupsOf(head);
  const t = tail === undefined ? [] : groupsOf(tail);
  const fill = 8 - h.length - t.length;
  if ((tail === undefined && fill !== 0) || (tail !== undefined && fill < 1)) throw bad();
  const groups = [...h, ...Array<string>(tail === undefined ? 0 : fill).fill('0'), ...t];
  if (groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) throw bad();
  return groups.map((g) => g.padStart(4, '0')).join('');
}

/** The canonical (RFC 5952) text of an IPv6 address, for comparing what dig prints with what was asked. */
export function canonicalIpv6(ip: string): string {
  const groups = (ipv6Nibbles(ip).match(/.{4}/g) as string[]).map((g) => g.replace(/^0+(?=.)/, ''));
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  if (best.at < 0) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}

/** '2001:db8::5' -> '5.0.0.0...8.b.d.0.1.0.0.2.ip6.arpa.' */
export function reverseNameV6(ip: string): string {
  return `${[...ipv6Nibbles(ip)].reverse().join('.')}.ip6.arpa.`;
}

/** The ip6.arpa zone for a prefix, on a nibble boundary (rounded down). */
export function reverseZoneV6(ip: string, prefix: number): string {
  if (!Number.isInteger(prefix) || prefix < 4 || prefix > 128) {
    throw invalidInput(`IPv6 prefix /${prefix} cannot name a reverse zone`, 'use a prefix between /4 and /128, or set dns.reverseZone6');
  }
  const nibbles = [...ipv6Nibbles(ip)].slice(0, Math.min(31, Math.floor(prefix / 4)));
  return `${nibbles.reverse().join('.')}.ip6.arpa.`;
}

/** 'host', 'host:port' or '[v6]:port' -> host and port (default 53). */
export function parseDnsServer(text: string): { host: string; port: number } {
  const t = text.trim();
  const m = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(t) ?? /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(t);
  const port = m?.[2] === undefined ? 53 : Number(m[2]);
  if (!m || port < 1 || port > 65535) {
    throw invalidInput(`DNS server '${text}' is not HOST or HOST:PORT`, "write it like 192.0.2.53, ns1.example.com:53 or '[2001:db8::53]:5353'");
  }
  return { host: m[1] as string, port };
}
