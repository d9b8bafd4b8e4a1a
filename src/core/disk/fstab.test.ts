import { describe, expect, it } from 'vitest';
import { fstabLines } from './fstab.js';
import { matchGolden as matchGoldenIn } from '../../../test/harness/golden.js';


const matchGolden = (file: string, actual: string) => matchGoldenIn(import.meta.dirname, file, actual);

const ROOT = '94f46fc5-903e-499a-bba3-04d255b3ff9d';
const SWAP = '4e28f8c3-9ab9-482f-9205-2a323a1766a6';

describe('fstabLines', () => {
  it('ext4 root with swap (golden)', () => {
    matchGolden('fstab-ext4-swap.txt', fstabLines({ rootUuid: ROOT, fs: 'ext4', swapUuid: SWAP }));
  });
  it('xfs root without swap (golden)', () => {
    const text = fstabLines({ rootUuid: ROOT, fs: 'xfs' });
    expect(text).not.toMatch(/swap/);
    matchGolden('fstab-xfs.txt', text);
  });
  it('uses the documented options', () => {
    expect(fstabLines({ rootUuid: ROOT, fs: 'ext4', swapUuid: SWAP })).toMatch(
      new RegExp(`^UUID=${ROOT} / ext4 errors=remount-ro 0 1\nUUID=${SWAP} none swap sw 0 0\n$`, 'm'),
    );
    expect(fstabLines({ rootUuid: ROOT, fs: 'xfs' })).toContain(`UUID=${ROOT} / xfs defaults 0 0\n`);
  });
  it('rejects things that are not UUIDs', () => {
    expect(() => fstabLines({ rootUuid: 'x y', fs: 'ext4' })).toThrow(/UUID/);
    expect(() => fstabLines({ rootUuid: ROOT, fs: 'ext4', swapUuid: `${SWAP}\n/dev/sda1 /` })).toThrow(/UUID/);
  });
});
