/**
 * IPv6 addresses as 128-bit bigints, and EUI-64 interface identifiers. A network's IPv6 address for a VM is
 * derived from the VM's MAC (EUI-64, as SLAAC would form it), so it needs no pool: MACs are unique, hence so
 * are the addresses, and the guest gets the same address whether it is configured statically or autoconfigures.
 */
import { invalidInput } from '../../errors.js';
import { splitCidrText } from './ipv4.js';

const GROUP_RE = /^[0-9a-f]{1,4}$/i;

/** Parses an IPv6 address (with '::' compression; no zone index, no embedded IPv4). */
export function parseIpv6(text: string, what = 'IPv6 address'): bigint {
  const bad = () => invalidInput(`${what}: '${text}' is not an IPv6 address`, 'write it like fd00:20::5 (eight hex groups, :: for a run of zeros)');
  const t = text.trim();
  const halves = t.split('::');
  if (halves.length > 2) throw bad();
  const split = (s: string) => (s === '' ? [] : s.split(':'));
  const head = split(halves[0] ?? '');
  const tail = halves.length === 2 ? split(halves[1] ?? '') : [];
  const groups = halves.length === 2 ? [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail] : head;
  if (groups.length !== 8 || (halves.length === 2 && head.length + tail.length > 7) || !groups.every((g) => GROUP_RE.test(g))) throw bad();
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** RFC 5952 text: lower case, no leading zeros, the longest run (2+) of zero groups as '::' (the first if tied). */
export function formatIpv6(n: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.len < 2) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}

/**
 * 'fd00:20::/64' -> network and prefix. The prefix must be /64 or shorter (the interface identifier takes the
 * low 64 bits) and the host bits must be zero, so a typo'd host address is not taken for a network.
 */
export function parseIpv6Network(text: string, what = 'IPv6 network'): { network: bigint; prefix: number; text: string } {
  const { address, prefix } = splitCidrText(text, what, 'fd00:20::/64');
  const addr = parseIpv6(address, what);
  if (prefix < 1 || prefix > 64) {
    throw invalidInput(`${what}: prefix /${prefix} is out of range`, 'use /64 (or shorter): addresses are formed from the MAC (EUI-64) in the low 64 bits');
  }
  const hostMask = (1n << BigInt(128 - prefix)) - 1n;
  const network = addr & ~hostMask;
  if (addr !== network) {
    throw invalidInput(`${what}: '${text}' has host bits set`, `did you mean ${formatIpv6(network)}/${prefix}?`);
  }
  if (network >> 120n === 0xffn) throw invalidInput(`${what}: '${text}' is a multicast range`, 'use a unicast prefix, like fd00:20::/64');
  return { network, prefix, text: `${formatIpv6(network)}/${prefix}` };
}

/** The modified EUI-64 interface identifier of a MAC ('52:54:00:12:34:56' -> 5054:ff:fe12:3456). */
export function eui64(mac: string): bigint {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  if (b.length !== 6 || b.some((x) => !(x >= 0 && x <= 255))) throw invalidInput(`'${mac}' is not a MAC address`, 'write it as 52:54:00:12:34:56');
  const bytes = [(b[0] as number) ^ 0x02, b[1], b[2], 0xff, 0xfe, b[3], b[4], b[5]] as number[];
  return bytes.reduce((acc, x) => (acc << 8n) | BigInt(x), 0n);
}

/** The address a MAC gets in an IPv6 network (normalized text, without prefix). */
export function ipv6FromMac(networkText: string, mac: string): string {
  const { network } = parseIpv6Network(networkText);
  return formatIpv6(network | eui64(mac));
}
