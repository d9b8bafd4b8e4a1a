/**
 * OpenSSH public keys ('ssh-ed25519 AAAA... comment'): parsing, the SHA256 fingerprint and the key size, the
 * way `ssh-keygen -l` shows them. The blob is parsed, not trusted: its embedded algorithm name must match the
 * one in front of it, so a mislabelled or truncated key fails here instead of in a known_hosts file.
 */
import { invalidInput } from '../../errors.js';
import { sha256 } from './sha256.js';

export interface PublicKey {
  /** The algorithm name: 'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ssh-rsa', 'ssh-dss'. */
  algorithm: string;
  /** The base64 blob exactly as written. */
  base64: string;
  blob: Uint8Array;
  /** '' when the line has none. */
  comment: string;
}

const ALGORITHMS = new Set(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa', 'ssh-dss']);
const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

export function parsePublicKey(line: string): PublicKey {
  const text = line.trim();
  if (/[\0\r\n]/.test(text)) throw invalidInput('an SSH public key must be one line');
  const [algorithm = '', base64 = '', ...rest] = text.split(/[ \t]+/);
  if (!ALGORITHMS.has(algorithm)) throw invalidInput(`'${algorithm.slice(0, 40)}' is not an SSH public key algorithm vmforge knows`);
  const blob = BASE64_RE.test(base64) ? new Uint8Array(Buffer.from(base64, 'base64')) : new Uint8Array();
  // Buffer's decoder skips what it does not understand; a blob that does not encode back was not base64.
  if (blob.length === 0 || Buffer.from(blob).toString('base64') !== base64) throw invalidInput(`the ${algorithm} public key is not valid base64`);
  const fields = readBlob(algorithm, blob);
  if (fields[0] !== algorithm) throw invalidInput(`the public key says ${algorithm} but its data is a ${fields[0] || 'malformed'} key`);
  if (algorithm.startsWith('ecdsa-sha2-') && new TextDecoder().decode(fields[1]) !== algorithm.slice('ecdsa-sha2-'.length)) {
    throw invalidInput(`the ${algorithm} public key names another curve`);
  }
  return { algorithm, base64, blob, comment: rest.join(' ') };
}

/** 'SHA256:' and the unpadded base64 of the blob's SHA-256, as ssh-keygen -l prints it. */
export function fingerprintOf(key: Pick<PublicKey, 'blob'>): string {
  return `SHA256:${Buffer.from(sha256(key.blob)).toString('base64').replace(/=+$/, '')}`;
}

/** The size ssh-keygen -l reports: the modulus length for RSA/DSA, the curve size for ECDSA, 256 for Ed25519. */
export function keyBits(key: Pick<PublicKey, 'algorithm' | 'blob'>): number {
  const fields = readBlob(key.algorithm, key.blob);
  switch (key.algorithm) {
    case 'ssh-ed25519':
      return 256;
    case 'ecdsa-sha2-nistp256':
      return 256;
    case 'ecdsa-sha2-nistp384':
      return 384;
    case 'ecdsa-sha2-nistp521':
      return 521;
    case 'ssh-rsa':
      return bitLength(fields[2]!);
    case 'ssh-dss':
      return bitLength(fields[1]!);
    default:
      throw invalidInput(`unknown SSH key algorithm ${key.algorithm}`);
  }
}

/** The label ssh-keygen -l puts in parentheses. */
export function keyLabel(algorithm: string): string {
  if (algorithm.startsWith('ecdsa-')) return 'ECDSA';
  if (algorithm === 'ssh-dss') return 'DSA';
  return algorithm.replace(/^ssh-/, '').toUpperCase();
}

/** The line `ssh-keygen -l -f FILE.pub` prints: '256 SHA256:... root@web01 (ED25519)'. */
export function fingerprintLine(line: string): string {
  const key = parsePublicKey(line);
  return `${keyBits(key)} ${fingerprintOf(key)} ${key.comment || 'no comment'} (${keyLabel(key.algorithm)})`;
}

/**
 * The blob's SSH wire fields (RFC 4253 6.6): the algorithm name, then the key's own strings/mpints; first
 * field as text, the others as bytes. Checks that the fields fill the blob exactly.
 */
function readBlob(algorithm: string, blob: Uint8Array): [string, ...Uint8Array[]] {
  const counts: Record<string, number> = { 'ssh-ed25519': 2, 'ssh-rsa': 3, 'ssh-dss': 5 };
  const count = counts[algorithm] ?? (algorithm.startsWith('ecdsa-sha2-') ? 3 : 0);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const fields: Uint8Array[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 4 > blob.length) throw invalidInput(`the ${algorithm} public key is truncated`);
    const len = view.getUint32(at);
    if (at + 4 + len > blob.length) throw invalidInput(`the ${algorithm} public key is truncated`);
    fields.push(blob.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  if (at !== blob.length) throw invalidInput(`the ${algorithm} public key has trailing data`);
  const [name, ...rest] = fields;
  return [new TextDecoder().decode(name), ...rest];
}

/** Bits of an unsigned mpint (leading zero bytes, as SSH pads positive numbers, do not count). */
function bitLength(mpint: Uint8Array): number {
  let i = 0;
  while (i < mpint.length && mpint[i] === 0) i++;
  if (i === mpint.length) return 0;
  return (mpint.length - i - 1) * 8 + (32 - Math.clz32(mpint[i]!));
}
