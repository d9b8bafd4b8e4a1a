import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../errors.js';
import { detectArchiveFormat, requireSupportedCompression } from './archive-format.js';

const bytes = (...b: number[]) => Uint8Array.from(b);

describe('detectArchiveFormat', () => {
  it('knows the compressors by their magic', () => {
    expect(detectArchiveFormat(bytes(0x1f, 0x8b, 0x08, 0))).toBe('gzip');
    expect(detectArchiveFormat(bytes(0x28, 0xb5, 0x2f, 0xfd, 0x04))).toBe('zstd');
    expect(detectArchiveFormat(bytes(0x50, 0x2a, 0x4d, 0x18, 0x04, 0, 0, 0))).toBe('zstd');
    expect(detectArchiveFormat(bytes(0x5e, 0x2a, 0x4d, 0x18))).toBe('zstd');
    expect(detectArchiveFormat(bytes(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00))).toBe('xz');
    expect(detectArchiveFormat(bytes(0x42, 0x5a, 0x68, 0x39))).toBe('bzip2');
    expect(detectArchiveFormat(bytes(0x04, 0x22, 0x4d, 0x18))).toBe('lz4');
  });

  it('recognises an uncompressed tar by its ustar marker and nothing by a near miss', () => {
    const tar = new Uint8Array(512);
    tar.set(Buffer.from('ustar\0'), 257);
    expect(detectArchiveFormat(tar)).toBe('tar');
    expect(detectArchiveFormat(new Uint8Array(512))).toBe('unknown');
    expect(detectArchiveFormat(bytes(0x1f))).toBe('unknown');
    expect(detectArchiveFormat(bytes(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x01))).toBe('unknown');
    expect(detectArchiveFormat(new Uint8Array(0))).toBe('unknown');
  });

  it('refuses what cannot be stored, saying how to convert it', () => {
    expect(requireSupportedCompression(bytes(0x1f, 0x8b), 'a.tgz')).toBe('gzip');
    for (const head of [bytes(0x42, 0x5a, 0x68), new Uint8Array(16)]) {
      let err: unknown;
      try {
        requireSupportedCompression(head, 'x.tar.bz2');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(VmforgeError);
      expect((err as VmforgeError).code).toBe('INVALID_INPUT');
      expect((err as VmforgeError).hint).toBeTruthy();
    }
  });
});
