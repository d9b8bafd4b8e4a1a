import { invalidInput } from '../../errors.js';

/** Parses dotted-quad IPv4 into a 32-bit unsigned number; rejects leading zeros and out-of-range octets. */
export function parseIpv4(text: string, what = 'address'): number {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255)) {
    throw invalidInput(`${what}: '${text}' is not an IPv4 address`, 'write it as four numbers 0-255, like 10.20.0.5');
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function formatIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** '10.20.0.5/24' -> address and prefix (prefix required). */
export function parseIpv4Cidr(text: string, what = 'address'): { address: string; prefix: number } {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text.trim());
  if (!m) throw invalidInput(`${what}: '${text}' needs a prefix length`, 'write it as ADDRESS/PREFIX, like 10.20.0.5/24');
  const prefix = Number(m[2]);
  if (prefix < 1 || prefix > 32) throw invalidInput(`${what}: prefix /${prefix} is out of range`, 'use a prefix between /1 and /32');
  const address = formatIpv4(parseIpv4(m[1] as string, what));
  return { address, prefix };
}

export function sameSubnet(a: string, b: string, prefix: number): boolean {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return ((parseIpv4(a) & mask) >>> 0) === ((parseIpv4(b) & mask) >>> 0);
}
