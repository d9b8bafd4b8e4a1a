import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../../errors.js';
import { GiB, MiB } from '../units.js';
import { MBR_MAX_DISK_BYTES, planDiskLayout, rootPartition, swapPartition } from './layout.js';

function invalid(fn: () => unknown): VmforgeError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(VmforgeError);
    expect((e as VmforgeError).code).toBe('INVALID_INPUT');
    return e as VmforgeError;
  }
  throw new Error('expected INVALID_INPUT');
}

describe('planDiskLayout', () => {
  it('puts root at 1 MiB and swap at the end', () => {
    const l = planDiskLayout({ diskBytes: 3 * GiB, swapBytes: 256 * MiB });
    expect(l.totalSectors).toBe(6291456);
    expect(l.firstPartitionLba).toBe(2048);
    expect(l.partitions).toEqual([
      { index: 1, role: 'root', type: 0x83, bootable: true, startLba: 2048, sectors: 5765120, offsetBytes: MiB, sizeBytes: 3 * GiB - 257 * MiB },
      { index: 2, role: 'swap', type: 0x82, bootable: false, startLba: 5767168, sectors: 524288, offsetBytes: 3 * GiB - 256 * MiB, sizeBytes: 256 * MiB },
    ]);
    expect(rootPartition(l).index).toBe(1);
    expect(swapPartition(l)?.index).toBe(2);
  });

  it('has no swap partition for swap 0', () => {
    const l = planDiskLayout({ diskBytes: 2 * GiB, swapBytes: 0 });
    expect(l.partitions).toHaveLength(1);
    expect(rootPartition(l).sizeBytes).toBe(2 * GiB - MiB);
    expect(swapPartition(l)).toBeUndefined();
  });

  it('aligns every boundary to 1 MiB, rounding swap up and leaving a ragged disk tail unused', () => {
    const l = planDiskLayout({ diskBytes: 2 * GiB + 7 * 512, swapBytes: 100 * MiB + 1 });
    for (const p of l.partitions) {
      expect(p.offsetBytes % MiB).toBe(0);
      expect(p.sizeBytes % MiB).toBe(0);
      expect(p.startLba * 512).toBe(p.offsetBytes);
      expect(p.sectors * 512).toBe(p.sizeBytes);
    }
    const swap = swapPartition(l);
    expect(swap?.sizeBytes).toBe(101 * MiB);
    expect((swap?.offsetBytes ?? 0) + (swap?.sizeBytes ?? 0)).toBe(2 * GiB);
    expect(rootPartition(l).offsetBytes + rootPartition(l).sizeBytes).toBe(swap?.offsetBytes);
  });

  it('accepts the largest disk an MBR can describe', () => {
    const l = planDiskLayout({ diskBytes: MBR_MAX_DISK_BYTES, swapBytes: GiB });
    const swap = swapPartition(l);
    expect((swap?.startLba ?? 0) + (swap?.sectors ?? 0)).toBe(2 ** 32);
  });

  it('rejects disks too small for the root filesystem, with a size hint', () => {
    const e = invalid(() => planDiskLayout({ diskBytes: 32 * MiB, swapBytes: 0 }));
    expect(e.message).toMatch(/at least 64(\.0)? MiB/);
    expect(e.hint).toMatch(/at least 65(\.0)? MiB/);
    invalid(() => planDiskLayout({ diskBytes: 200 * MiB, swapBytes: 150 * MiB }));
    expect(e.message).toMatch(/root filesystem/);
  });

  it('needs 300 MiB of root for xfs', () => {
    planDiskLayout({ diskBytes: 301 * MiB, swapBytes: 0, fs: 'xfs' });
    invalid(() => planDiskLayout({ diskBytes: 300 * MiB, swapBytes: 0, fs: 'xfs' }));
  });

  it('rejects swap not smaller than the disk', () => {
    expect(invalid(() => planDiskLayout({ diskBytes: GiB, swapBytes: GiB })).message).toMatch(/swap/);
    invalid(() => planDiskLayout({ diskBytes: GiB, swapBytes: 2 * GiB }));
  });

  it.each([
    ['zero disk', 0, 0],
    ['negative disk', -GiB, 0],
    ['fractional disk', 1.5, 0],
    ['NaN disk', Number.NaN, 0],
    ['infinite disk', Number.POSITIVE_INFINITY, 0],
    ['disk not in sectors', GiB + 100, 0],
    ['disk beyond MBR', MBR_MAX_DISK_BYTES + 512, 0],
    ['absurd disk', 2 ** 60, 0],
    ['negative swap', GiB, -1],
    ['fractional swap', GiB, 0.5],
  ])('rejects %s', (_name, diskBytes, swapBytes) => {
    invalid(() => planDiskLayout({ diskBytes, swapBytes }));
  });
});
