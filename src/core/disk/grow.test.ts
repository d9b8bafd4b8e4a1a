import { describe, expect, it } from 'vitest';
import { matchGolden as matchGoldenIn } from '../../../test/harness/golden.js';
import { VmforgeError } from '../../errors.js';
import { GiB, MiB } from '../units.js';
import { growGoldenMbr, grownMbr, planGrow } from './grow.js';
import { planDiskLayout } from './layout.js';
import { mbrBytes } from './mbr.js';
import { layoutFromMbr, parseMbr } from './mbr-read.js';

const matchGolden = (file: string, actual: string) => matchGoldenIn(import.meta.dirname, file, actual);

function hexRows(buf: Buffer, base = 0): string {
  const rows: string[] = [];
  for (let at = 0; at < buf.length; at += 16) {
    const row = buf.subarray(at, at + 16);
    if (row.every((b) => b === 0)) continue;
    rows.push(`${(base + at).toString(16).padStart(4, '0')}: ${row.toString('hex').replace(/(..)/g, '$1 ').trim()}`);
  }
  return `${rows.join('\n')}\n`;
}

/** A golden first sector as the cold path leaves it: our table plus GRUB's boot code in bytes 0..0x1b7. */
function goldenSector(diskBytes: number, swapBytes: number): Buffer {
  const mbr = mbrBytes(planDiskLayout({ diskBytes, swapBytes }), 0xcafef00d);
  for (let i = 0; i < 0x1b8; i++) mbr[i] = (i * 7 + 1) & 0xff;
  return mbr;
}

describe('parseMbr / layoutFromMbr', () => {
  it('reads back what mbrBytes wrote', () => {
    const layout = planDiskLayout({ diskBytes: 3 * GiB, swapBytes: 256 * MiB });
    const mbr = mbrBytes(layout, 0x12345678);
    expect(parseMbr(mbr).diskSignature).toBe(0x12345678);
    expect(layoutFromMbr(mbr, 3 * GiB)).toEqual(layout);
  });

  it('refuses a sector without 55 AA, unknown types, overlaps and partitions past the end', () => {
    const layout = planDiskLayout({ diskBytes: GiB, swapBytes: 128 * MiB });
    const good = mbrBytes(layout, 1);
    const noSig = Buffer.from(good);
    noSig[0x1ff] = 0;
    expect(() => parseMbr(noSig)).toThrow(/55 AA/);
    const ntfs = Buffer.from(good);
    ntfs[0x1be + 4] = 0x07;
    expect(() => layoutFromMbr(ntfs, GiB)).toThrow(/type 0x7/);
    const overlap = Buffer.from(good);
    overlap.writeUInt32LE(layout.partitions[1]!.startLba - 8, 0x1ce + 8);
    expect(() => layoutFromMbr(overlap, GiB)).toThrow(/overlap/);
    expect(() => layoutFromMbr(good, GiB / 2)).toThrow(/does not fit/);
  });
});

describe('planGrow', () => {
  const golden = planDiskLayout({ diskBytes: 2 * GiB, swapBytes: 256 * MiB });

  it('grows root in place and moves swap to the end of the larger disk', () => {
    const plan = planGrow({ golden, targetDiskBytes: 10 * GiB });
    expect(plan.layout).toEqual(planDiskLayout({ diskBytes: 10 * GiB, swapBytes: 256 * MiB }));
    expect(plan.root).toEqual({ index: 1, offsetBytes: MiB, oldSizeBytes: 2 * GiB - 256 * MiB - MiB, newSizeBytes: 10 * GiB - 256 * MiB - MiB });
    expect(plan.rootGrows).toBe(true);
    expect(plan.swap).toBe('moved');
    expect(plan.mkswap).toMatchObject({ index: 2, offsetBytes: 10 * GiB - 256 * MiB, sizeBytes: 256 * MiB });
  });

  it('changes nothing for a disk of the golden size', () => {
    const plan = planGrow({ golden, targetDiskBytes: 2 * GiB });
    expect(plan.layout).toEqual(golden);
    expect(plan.rootGrows).toBe(false);
    expect(plan.swap).toBe('kept');
    expect(plan.mkswap).toBeNull();
  });

  it('lets the clone pick its own swap size, create or drop swap', () => {
    expect(planGrow({ golden, targetDiskBytes: 4 * GiB, swapBytes: GiB })).toMatchObject({ swap: 'moved', mkswap: { sizeBytes: GiB } });
    expect(planGrow({ golden, targetDiskBytes: 4 * GiB, swapBytes: 0 })).toMatchObject({ swap: 'removed', mkswap: null });
    const noSwap = planDiskLayout({ diskBytes: 2 * GiB, swapBytes: 0 });
    expect(planGrow({ golden: noSwap, targetDiskBytes: 3 * GiB })).toMatchObject({ swap: 'none', mkswap: null, rootGrows: true });
    expect(planGrow({ golden: noSwap, targetDiskBytes: 3 * GiB, swapBytes: 512 * MiB })).toMatchObject({
      swap: 'created',
      mkswap: { index: 2, offsetBytes: 3 * GiB - 512 * MiB },
    });
  });

  it('refuses to shrink the disk or the root partition', () => {
    expect(() => planGrow({ golden, targetDiskBytes: GiB })).toThrow(/smaller than its golden image/);
    // Same disk, more swap: root would lose space.
    expect(() => planGrow({ golden, targetDiskBytes: 2 * GiB, swapBytes: 512 * MiB })).toThrow(VmforgeError);
    expect(() => planGrow({ golden, targetDiskBytes: 2 * GiB, swapBytes: 512 * MiB })).toThrow(/less than the golden/);
  });

  it('refuses layouts vmforge did not make', () => {
    const swapFirst = {
      ...golden,
      partitions: [
        { ...golden.partitions[1]!, startLba: 2048, offsetBytes: MiB },
        { ...golden.partitions[0]!, startLba: 2048 + 256 * 2048, offsetBytes: MiB + 256 * MiB },
      ],
    };
    expect(() => planGrow({ golden: swapFirst, targetDiskBytes: 4 * GiB })).toThrow(/swap before the root/);
    const rootAt2M = { ...golden, partitions: [{ ...golden.partitions[0]!, startLba: 4096, offsetBytes: 2 * MiB }] };
    expect(() => planGrow({ golden: rootAt2M, targetDiskBytes: 4 * GiB })).toThrow(/rebuild the golden|at 2097152/);
  });
});

describe('grownMbr', () => {
  it('keeps boot code and disk signature, replaces only the table (golden)', () => {
    const sector = goldenSector(2 * GiB, 256 * MiB);
    const { plan, mbr } = growGoldenMbr({ goldenSector: sector, goldenDiskBytes: 2 * GiB, targetDiskBytes: 20 * GiB });
    expect(mbr.subarray(0, 0x1be).equals(sector.subarray(0, 0x1be))).toBe(true);
    expect(layoutFromMbr(mbr, 20 * GiB)).toEqual(plan.layout);
    expect(mbr.subarray(0x1be, 0x1fe).equals(mbrBytes(plan.layout, 0xcafef00d).subarray(0x1be, 0x1fe))).toBe(true);
    matchGolden('mbr-grow-2g-to-20g-swap256m.hex', hexRows(mbr.subarray(0x1b0), 0x1b0));
  });

  it('clears a slot whose partition went away', () => {
    const sector = goldenSector(2 * GiB, 256 * MiB);
    const golden = layoutFromMbr(sector, 2 * GiB);
    const mbr = grownMbr(sector, planGrow({ golden, targetDiskBytes: 3 * GiB, swapBytes: 0 }));
    expect(mbr.subarray(0x1ce, 0x1fe).every((b) => b === 0)).toBe(true);
    expect(mbr.readUInt32LE(0x1be + 12)).toBe((3 * GiB - MiB) / 512);
  });
});
