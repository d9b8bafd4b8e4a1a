/**
 * The SSH wire encodings (RFC 4251 5, RFC 4253 6.6, RFC 5656 3.1, RFC 8709 4) and the file formats ssh-keygen
 * writes, so host keys made with node:crypto come out byte for byte in the shape ssh-keygen gives them: the
 * one-line .pub file, and for Ed25519 the "openssh-key-v1" private key file (OpenSSH's PROTOCOL.key).
 * RSA and ECDSA private keys stay PEM (PKCS#1 / SEC1), which node:crypto writes itself.
 */
import { invalidInput } from '../../errors.js';

const utf8 = new TextEncoder();

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function sshUint32(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw invalidInput(`${n} is not a uint32`);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

/** uint32 length, then the bytes (text as UTF-8). */
export function sshString(data: Uint8Array | string): Uint8Array {
  const bytes = typeof data === 'string' ? utf8.encode(data) : data;
  return concatBytes([sshUint32(bytes.length), bytes]);
}

/**
 * A non-negative integer given as unsigned big-endian bytes, as an SSH mpint: leading zero bytes go, a 0x00 is
 * put in front when the top bit is set (it would read as negative otherwise), and zero is the empty string.
 */
export function sshMpint(unsigned: Uint8Array): Uint8Array {
  let i = 0;
  while (i < unsigned.length && unsigned[i] === 0) i++;
  const digits = unsigned.subarray(i);
  return sshString(digits.length && digits[0]! & 0x80 ? concatBytes([new Uint8Array([0]), digits]) : digits);
}

export function ed25519PublicBlob(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== 32) throw invalidInput(`an Ed25519 public key has 32 bytes, not ${publicKey.length}`);
  return concatBytes([sshString('ssh-ed25519'), sshString(publicKey)]);
}

/** x and y: the affine coordinates, 32 bytes each; the point goes on the wire uncompressed (0x04 || x || y). */
export function ecdsaP256PublicBlob(x: Uint8Array, y: Uint8Array): Uint8Array {
  if (x.length !== 32 || y.length !== 32) throw invalidInput('a P-256 point has 32-byte coordinates');
  return concatBytes([sshString('ecdsa-sha2-nistp256'), sshString('nistp256'), sshString(concatBytes([new Uint8Array([4]), x, y]))]);
}

/** e and n as unsigned big-endian bytes (leading zeros allowed). */
export function rsaPublicBlob(e: Uint8Array, n: Uint8Array): Uint8Array {
  return concatBytes([sshString('ssh-rsa'), sshMpint(e), sshMpint(n)]);
}

/** The .pub line without its newline: 'ALGORITHM BASE64 COMMENT', the algorithm read from the blob itself. */
export function publicKeyLine(blob: Uint8Array, comment: string): string {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const len = blob.length >= 4 ? view.getUint32(0) : Infinity;
  if (4 + len > blob.length) throw invalidInput('an SSH public key blob starts with its algorithm name');
  const algorithm = new TextDecoder().decode(blob.subarray(4, 4 + len));
  return [algorithm, Buffer.from(blob).toString('base64'), ...(comment ? [comment] : [])].join(' ');
}

/** ssh-keygen wraps the base64 of its own private key format at 70 columns (sshbuf_dtob64 in sshkey.c). */
const OPENSSH_WRAP = 70;
/** The "none" cipher's block size: the private section is padded to a multiple of it. */
const NONE_BLOCK = 8;

export interface Ed25519PrivateKeyInput {
  /** The 32-byte private seed (RFC 8032's private key). */
  seed: Uint8Array;
  /** The 32-byte public key that seed gives. */
  publicKey: Uint8Array;
  comment: string;
  /** A random uint32, written twice: a decrypting reader compares the copies to spot a wrong passphrase. */
  checkInt: number;
}

/**
 * An unencrypted Ed25519 key as ssh-keygen writes it ('-----BEGIN OPENSSH PRIVATE KEY-----'): magic, cipher and
 * KDF "none", one public key, then the private section (check ints, type, public key, seed || public key,
 * comment, padding 1, 2, 3...). The working buffers holding the seed are zeroed before returning.
 */
export function opensshEd25519PrivateKey(k: Ed25519PrivateKeyInput): string {
  if (k.seed.length !== 32) throw invalidInput(`an Ed25519 seed has 32 bytes, not ${k.seed.length}`);
  const pubBlob = ed25519PublicBlob(k.publicKey);
  const secret = concatBytes([k.seed, k.publicKey]);
  const secretString = sshString(secret);
  const unpadded = concatBytes([sshUint32(k.checkInt), sshUint32(k.checkInt), sshString('ssh-ed25519'), sshString(k.publicKey), secretString, sshString(k.comment)]);
  const padLength = (NONE_BLOCK - (unpadded.length % NONE_BLOCK)) % NONE_BLOCK;
  const privateSection = concatBytes([unpadded, Uint8Array.from({ length: padLength }, (_, i) => i + 1)]);
  const privateString = sshString(privateSection);
  const body = concatBytes([utf8.encode('openssh-key-v1\0'), sshString('none'), sshString('none'), sshString(''), sshUint32(1), sshString(pubBlob), privateString]);
  const base64 = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64');
  for (const b of [secret, secretString, unpadded, privateSection, privateString, body]) b.fill(0);
  const lines = base64.match(new RegExp(`.{1,${OPENSSH_WRAP}}`, 'g')) ?? [];
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}
