/**
 * Filesystem UUIDs are chosen by vmforge (not read back with blkid) so fstab, grub.cfg and the kernel
 * command line can be written before or without probing. The random bytes are injected.
 */
import { invalidInput } from '../../errors.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** RFC 4122 version-4 UUID from 16 random bytes, lower case. */
export function uuidFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw invalidInput(`a UUID needs 16 random bytes, got ${bytes.length}`);
  const b = Uint8Array.from(bytes);
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const hex = Buffer.from(b).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function isUuid(text: string): boolean {
  return UUID_RE.test(text);
}

export function assertUuid(text: string, what: string): void {
  if (!isUuid(text)) throw invalidInput(`${what} '${text}' is not a lower-case UUID`, 'use the form 01234567-89ab-4cde-8f01-23456789abcd');
}
