/** Test data for blob writers: bytes that differ at every offset, so a shifted or repeated block shows up. */
import { createHash } from 'node:crypto';

export function patternBytes(n: number, salt = 0): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >>> 12) * 7 + salt) & 0xff;
  return b;
}

export const sha256Hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
