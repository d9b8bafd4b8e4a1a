/**
 * What an archive file is, from its first bytes (never from its name: a `.tgz` renamed `.tar.zst` is still
 * gzip). Pure: the caller reads the head.
 */
import { invalidInput } from '../errors.js';
import type { Compression } from './manifest.js';

export type ArchiveFormat = Compression | 'bzip2' | 'lz4' | 'tar' | 'unknown';

/** Enough for every magic below, including the ustar marker of an uncompressed tar at offset 257. */
export const ARCHIVE_HEAD_BYTES = 512;

export function detectArchiveFormat(head: Uint8Array): ArchiveFormat {
  const at = (i: number) => head[i];
  if (at(0) === 0x1f && at(1) === 0x8b) return 'gzip';
  if (at(0) === 0x28 && at(1) === 0xb5 && at(2) === 0x2f && at(3) === 0xfd) return 'zstd';
  // pzstd (and zstd --format with skippable frames) starts with a skippable frame: 0x184D2A5? little-endian.
  if (((at(0) ?? 0) & 0xf0) === 0x50 && at(1) === 0x2a && at(2) === 0x4d && at(3) === 0x18) return 'zstd';
  if (at(0) === 0xfd && at(1) === 0x37 && at(2) === 0x7a && at(3) === 0x58 && at(4) === 0x5a && at(5) === 0x00) return 'xz';
  if (at(0) === 0x42 && at(1) === 0x5a && at(2) === 0x68) return 'bzip2';
  if (at(0) === 0x04 && at(1) === 0x22 && at(2) === 0x4d && at(3) === 0x18) return 'lz4';
  if (head.length >= 262 && Buffer.from(head.subarray(257, 262)).toString('latin1') === 'ustar') return 'tar';
  return 'unknown';
}

/** The compression of an archive vmforge can store, or INVALID_INPUT saying how to make one it can. */
export function requireSupportedCompression(head: Uint8Array, file: string): Compression {
  const format = detectArchiveFormat(head);
  switch (format) {
    case 'zstd':
    case 'gzip':
    case 'xz':
      return format;
    case 'tar':
      throw invalidInput(`${file} is an uncompressed tar archive`, `compress it first: zstd -T0 ${file} (then import ${file}.zst)`);
    case 'bzip2':
    case 'lz4':
      throw invalidInput(`${file} is ${format}-compressed; bundles are zstd, gzip or xz`, `recompress it: ${format === 'bzip2' ? 'bzip2' : 'lz4'} -dc ${file} | zstd -T0 -o FILE.tar.zst`);
    case 'unknown':
      throw invalidInput(`${file} is not a zstd, gzip or xz compressed tar archive (unknown magic bytes)`, 'make one with: tar -C ROOT --numeric-owner -czpf FILE.tar.gz .');
  }
}
