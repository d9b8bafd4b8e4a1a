/** Checks of the static network settings, shared by every family: a bad address must fail before any guest edit. */
import { invalidInput } from '../../errors.js';
import type { GuestNetConfig } from '../model/spec.js';
import { quoteForMessage } from '../names.js';

/** glibc reads at most three nameservers (MAXNS). */
export const MAX_NAMESERVERS = 3;

export function validateNet(net: GuestNetConfig): void {
  if (net.mode === 'dhcp') return;
  const address = parseIPv4(net.address, 'IPv4 address');
  if (!Number.isInteger(net.prefix) || net.prefix < 1 || net.prefix > 32) {
    throw invalidInput(`network prefix ${quoteForMessage(String(net.prefix))} is not an integer from 1 to 32`, 'give the prefix length, like 24 for 255.255.255.0');
  }
  const first = address >>> 24;
  if (first === 0 || first === 127 || first >= 224) {
    throw invalidInput(`IPv4 address ${net.address} is not a usable host address`, 'give a unicast address outside 0/8 and 127/8');
  }
  const mask = prefixMask(net.prefix);
  const network = (address & mask) >>> 0;
  const broadcast = (network | ~mask) >>> 0;
  if (net.prefix <= 30 && (address === network || address === broadcast)) {
    throw invalidInput(`IPv4 address ${net.address} is the ${address === network ? 'network' : 'broadcast'} address of ${formatIPv4(network)}/${net.prefix}`);
  }
  if (net.gateway !== undefined) {
    const gateway = parseIPv4(net.gateway, 'gateway');
    if (gateway === address) throw invalidInput(`gateway ${net.gateway} is the VM's own address`);
    if (((gateway & mask) >>> 0) !== network || net.prefix === 32) {
      throw invalidInput(
        `gateway ${net.gateway} is not inside ${formatIPv4(network)}/${net.prefix}`,
        'ifupdown cannot add a route through a gateway outside the subnet; check the address and prefix',
      );
    }
  }
  if (net.dns.length > MAX_NAMESERVERS) {
    throw invalidInput(`${net.dns.length} DNS servers given; the guest's resolver uses at most ${MAX_NAMESERVERS}`, 'give at most three');
  }
  for (const server of net.dns) {
    if (!isIPv4(server) && !isIPv6(server)) throw invalidInput(`DNS server ${quoteForMessage(server)} is not an IP address`);
  }
}

function prefixMask(prefix: number): number {
  return prefix === 32 ? 0xffffffff : ~(0xffffffff >>> prefix) >>> 0;
}

/** 24 -> '255.255.255.0', for files that predate prefix lengths. */
export function netmaskOf(prefix: number): string {
  return formatIPv4(prefixMask(prefix));
}

/** Dotted quad only. Leading zeros are refused: inet_aton() reads '010' as octal 8. */
export function parseIPv4(text: string, what: string): number {
  if (!isIPv4(text)) throw invalidInput(`${what} ${quoteForMessage(text)} is not an IPv4 address`, 'write it as four decimal numbers, like 192.0.2.10');
  return text.split('.').reduce((acc, part) => ((acc << 8) | Number(part)) >>> 0, 0);
}

export function isIPv4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((p) => /^(?:0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

export function formatIPv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => (n >>> shift) & 0xff).join('.');
}

export function isIPv6(text: string): boolean {
  let rest = text.toLowerCase();
  let groups = 8;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon >= 0 && rest.slice(lastColon + 1).includes('.')) {
    if (!isIPv4(rest.slice(lastColon + 1))) return false;
    rest = `${rest.slice(0, lastColon + 1)}0:0`;
  }
  const halves = rest.split('::');
  if (halves.length > 2) return false;
  const parse = (s: string) => (s === '' ? [] : s.split(':'));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  if (![...head, ...tail].every((g) => /^[0-9a-f]{1,4}$/.test(g))) return false;
  groups -= head.length + tail.length;
  return halves.length === 2 ? groups >= 1 : groups === 0;
}
