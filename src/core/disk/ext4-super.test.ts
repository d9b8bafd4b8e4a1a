import { describe, expect, it } from 'vitest';
import { parseExt4Super, resizeNeedsCheck } from './ext4-super.js';

function superblock(o: { state?: number; mtime?: number; lastcheck?: number; seed?: boolean; csum?: boolean } = {}): Buffer {
  const b = Buffer.alloc(1024);
  b.writeUInt32LE(32768, 0x00); // inodes
  b.writeUInt32LE(131072, 0x04); // blocks (lo)
  b.writeUInt32LE(1000, 0x0c); // free blocks (lo)
  b.writeUInt32LE(30000, 0x10); // free inodes
  b.writeUInt32LE(2, 0x18); // log block size: 4096
  b.writeUInt32LE(o.mtime ?? 1_700_000_000, 0x2c);
  b.writeUInt16LE(0xef53, 0x38);
  b.writeUInt16LE(o.state ?? 1, 0x3a);
  b.writeUInt32LE(o.lastcheck ?? 1_700_000_000, 0x40);
  b.writeUInt32LE(0x80 | (o.seed ? 0x2000 : 0), 0x60);
  b.writeUInt32LE(o.csum === false ? 0 : 0x400, 0x64);
  b.writeUInt32LE(1, 0x150); // blocks (hi)
  return b;
}

describe('parseExt4Super', () => {
  it('reads sizes, times, state and the checksum features', () => {
    const s = parseExt4Super(superblock({ seed: true }));
    expect(s).toMatchObject({ blockSize: 4096, blocksCount: 2 ** 32 + 131072, inodesCount: 32768, clean: true, hasErrors: false, metadataCsum: true, csumSeed: true });
    expect(parseExt4Super(superblock({ csum: false })).metadataCsum).toBe(false);
  });

  it('refuses what is not an ext superblock', () => {
    expect(() => parseExt4Super(Buffer.alloc(1024))).toThrow(/magic/);
    expect(() => parseExt4Super(Buffer.alloc(10))).toThrow(/1024 bytes/);
  });

  it('says when resize2fs would demand e2fsck -f first', () => {
    expect(resizeNeedsCheck(parseExt4Super(superblock()))).toBe(false);
    expect(resizeNeedsCheck(parseExt4Super(superblock({ lastcheck: 1_700_000_000, mtime: 1_700_000_001 })))).toBe(true);
    expect(resizeNeedsCheck(parseExt4Super(superblock({ state: 0 })))).toBe(true); // not clean (mounted, or crashed)
    expect(resizeNeedsCheck(parseExt4Super(superblock({ state: 3 })))).toBe(true); // errors recorded
  });
});
