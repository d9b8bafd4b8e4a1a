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

/**
 * 'ADDR/PREFIX' -> its two halves, strictly: no spaces anywhere and a prefix written without leading zeros
 * ('/08' could be read as 8 or as an octal typo; ' 10.0.0.0/24' is a pasted value whose rest may be wrong too).
 */
export function splitCidrText(text: string, what: string, example: string): { address: string; prefix: number } {
  if (/\s/.test(text)) throw invalidInput(`${what}: '${text}' contains white space`, `write it without spaces, like ${example}`);
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!m) throw invalidInput(`${what}: '${text}' needs a prefix length`, `write it as ADDRESS/PREFIX, like ${example}`);
  if (/^0\d/.test(m[2] as string)) throw invalidInput(`${what}: prefix '/${m[2]}' has a leading zero`, `write the prefix as a plain number, like ${example}`);
  return { address: m[1] as string, prefix: Number(m[2]) };
}

/** '10.20.0.5/24' -> address and prefix (prefix required). */
export function parseIpv4Cidr(text: string, what = 'address'): { address: string; prefix: number } {
  const { address: a, prefix } = splitCidrText(text, what, '10.20.0.5/24');
  if (prefix < 1 || prefix > 32) throw invalidInput(`${what}: prefix /${prefix} is out of range`, 'use a prefix between /1 and /32');
  const address = formatIpv4(parseIpv4(a, what));
  return { address, prefix };
}

export function sameSubnet(a: string, b: string, prefix: number): boolean {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return ((parseIpv4(a) & mask) >>> 0) === ((parseIpv4(b) & mask) >>> 0);
}
