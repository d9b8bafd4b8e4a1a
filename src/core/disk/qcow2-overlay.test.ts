import { describe, expect, it } from 'vitest';
import { qcow2OverlayBytes } from './qcow2-overlay.js';

// Byte-for-byte agreement with qemu-img is checked in test/integration/qcow2-overlay.test.ts; here the fields.
describe('qcow2OverlayBytes', () => {
  const img = qcow2OverlayBytes({ backing: '/tmp/base.raw', backingFormat: 'raw', sizeBytes: 4 * 1024 ** 3 });

  it('writes a version 3 header with 64 KiB clusters, the size and the backing file', () => {
    expect(img.toString('latin1', 0, 4)).toBe('QFI\xfb');
    expect(img.readUInt32BE(4)).toBe(3);
    expect(img.readUInt32BE(20)).toBe(16);
    expect(img.readBigUInt64BE(24)).toBe(4n * 1024n ** 3n);
    const off = Number(img.readBigUInt64BE(8));
    expect(img.toString('utf8', off, off + img.readUInt32BE(16))).toBe('/tmp/base.raw');
    expect(img.readUInt32BE(100)).toBe(112);
    // the first extension is the backing format
    expect(img.readUInt32BE(112)).toBe(0xe2792aca);
    expect(img.toString('ascii', 120, 120 + img.readUInt32BE(116))).toBe('raw');
  });

  it('has an empty L1 table sized for the disk, and refcounts of 1 for exactly the metadata clusters', () => {
    expect(img.readUInt32BE(36)).toBe(8); // 4 GiB / 512 MiB per L2 table
    expect(Number(img.readBigUInt64BE(40))).toBe(3 * 65536);
    expect(img.length).toBe(3 * 65536 + 8 * 8);
    expect(img.subarray(3 * 65536).every((b) => b === 0)).toBe(true);
    expect(Number(img.readBigUInt64BE(65536))).toBe(2 * 65536);
    const refcounts = Array.from({ length: 6 }, (_, i) => img.readUInt16BE(2 * 65536 + i * 2));
    expect(refcounts).toEqual([1, 1, 1, 1, 0, 0]);
  });

  it('rounds the L1 table up for sizes that are not whole L2 ranges, and grows it for big disks', () => {
    expect(qcow2OverlayBytes({ backing: '/g', backingFormat: 'qcow2', sizeBytes: 512 }).readUInt32BE(36)).toBe(1);
    const big = qcow2OverlayBytes({ backing: '/g', backingFormat: 'raw', sizeBytes: 8 * 1024 ** 4 });
    expect(big.readUInt32BE(36)).toBe(16384);
    expect(big.length).toBe(3 * 65536 + 16384 * 8);
    expect(big.readUInt16BE(2 * 65536 + 4 * 2)).toBe(1); // the L1 table's second cluster is counted
  });

  it('refuses relative backing paths, odd sizes and over-long names', () => {
    expect(() => qcow2OverlayBytes({ backing: 'g.raw', backingFormat: 'raw', sizeBytes: 512 })).toThrow(/absolute/);
    expect(() => qcow2OverlayBytes({ backing: '/g', backingFormat: 'raw', sizeBytes: 1000 })).toThrow(/multiple of 512/);
    expect(() => qcow2OverlayBytes({ backing: '/g', backingFormat: 'raw', sizeBytes: 0 })).toThrow(/multiple of 512/);
    expect(() => qcow2OverlayBytes({ backing: `/${'a'.repeat(1100)}`, backingFormat: 'raw', sizeBytes: 512 })).toThrow(/longer than/);
  });
});
