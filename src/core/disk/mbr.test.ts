import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../../errors.js';
import { GiB, MiB } from '../units.js';
import { planDiskLayout, type DiskLayout } from './layout.js';
import { chsBytes, mbrBytes } from './mbr.js';
import { matchGolden as matchGoldenIn } from '../../../test/harness/golden.js';


const matchGolden = (file: string, actual: string) => matchGoldenIn(import.meta.dirname, file, actual);

/** xxd-like dump of the non-zero 16-byte rows, so a golden diff shows which field moved. */
function hexRows(buf: Buffer): string {
  const rows: string[] = [];
  for (let at = 0; at < buf.length; at += 16) {
    const row = buf.subarray(at, at + 16);
    if (row.every((b) => b === 0)) continue;
    rows.push(`${at.toString(16).padStart(4, '0')}: ${row.toString('hex').replace(/(..)/g, '$1 ').trim()}`);
  }
  return `${rows.join('\n')}\n`;
}

describe('chsBytes', () => {
  // Values read back from tables sfdisk wrote (255 heads, 63 sectors per track).
  it('matches sfdisk for addressable sectors', () => {
    expect(chsBytes(2048)).toEqual([0x20, 0x21, 0x00]);
    expect(chsBytes(83967)).toEqual([0x39, 0x34, 0x05]);
    expect(chsBytes(0)).toEqual([0, 1, 0]);
  });
  it('encodes cylinder bits 8-9 in the sector byte', () => {
    const lba = (1000 * 255 + 3) * 63 + 4; // c=1000 (0x3e8), h=3, s=5
    expect(chsBytes(lba)).toEqual([3, 5 | 0xc0, 0xe8]);
  });
  it('uses FE FF FF past cylinder 1023', () => {
    expect(chsBytes(1024 * 255 * 63)).toEqual([0xfe, 0xff, 0xff]);
    expect(chsBytes(40001535)).toEqual([0xfe, 0xff, 0xff]);
  });
});

describe('mbrBytes', () => {
  it('writes the 3 GiB + 256 MiB swap table (golden)', () => {
    const mbr = mbrBytes(planDiskLayout({ diskBytes: 3 * GiB, swapBytes: 256 * MiB }), 0x12345678);
    expect(mbr.length).toBe(512);
    expect(mbr.subarray(0, 0x1b8).every((b) => b === 0)).toBe(true);
    expect(mbr.readUInt32LE(0x1b8)).toBe(0x12345678);
    expect(mbr[0x1fe]).toBe(0x55);
    expect(mbr[0x1ff]).toBe(0xaa);
    matchGolden('mbr-3g-swap256m.hex', hexRows(mbr));
  });

  it('writes one bootable entry when there is no swap, LBA-only CHS on a large disk (golden)', () => {
    const mbr = mbrBytes(planDiskLayout({ diskBytes: 20 * GiB, swapBytes: 0 }), 0xdeadbeef);
    expect(mbr[0x1be]).toBe(0x80);
    expect(mbr.subarray(0x1ce, 0x1fe).every((b) => b === 0)).toBe(true);
    matchGolden('mbr-20g-noswap.hex', hexRows(mbr));
  });

  it('stores start and size as little-endian sector counts', () => {
    const layout = planDiskLayout({ diskBytes: 3 * GiB, swapBytes: 256 * MiB });
    const mbr = mbrBytes(layout, 1);
    layout.partitions.forEach((p, i) => {
      const at = 0x1be + i * 16;
      expect(mbr[at + 4]).toBe(p.type);
      expect(mbr.readUInt32LE(at + 8)).toBe(p.startLba);
      expect(mbr.readUInt32LE(at + 12)).toBe(p.sectors);
    });
  });

  it.each([-1, 2 ** 32, 1.5, Number.NaN])('rejects disk signature %s', (sig) => {
    expect(() => mbrBytes(planDiskLayout({ diskBytes: GiB, swapBytes: 0 }), sig)).toThrow(VmforgeError);
  });

  it('rejects a hand-made layout that does not fit', () => {
    const layout: DiskLayout = planDiskLayout({ diskBytes: GiB, swapBytes: 0 });
    const broken = { ...layout, partitions: layout.partitions.map((p) => ({ ...p, sectors: p.sectors + 4096 })) };
    expect(() => mbrBytes(broken, 1)).toThrow(/does not fit/);
    const dup = { ...layout, partitions: [...layout.partitions, ...layout.partitions] };
    expect(() => mbrBytes(dup, 1)).toThrow(/slot/);
  });
});
