import { describe, expect, it } from 'vitest';
import { mkfsArgv, mkswapArgv } from './mkfs.js';

const UUID = '94f46fc5-903e-499a-bba3-04d255b3ff9d';

describe('mkfs argv', () => {
  it('ext4 with our UUID and lazy init', () => {
    expect(mkfsArgv({ device: '/dev/loop0', fs: 'ext4', uuid: UUID, label: 'root' })).toEqual([
      'mkfs.ext4', '-q', '-F', '-U', UUID, '-E', 'lazy_itable_init=1,lazy_journal_init=1', '-L', 'root', '/dev/loop0',
    ]);
  });
  it('xfs with our UUID', () => {
    expect(mkfsArgv({ device: '/dev/loop0', fs: 'xfs', uuid: UUID })).toEqual(['mkfs.xfs', '-q', '-f', '-m', `uuid=${UUID}`, '/dev/loop0']);
  });
  it('mkswap with our UUID', () => {
    expect(mkswapArgv({ device: '/dev/loop1', uuid: UUID })).toEqual(['mkswap', '-U', UUID, '/dev/loop1']);
  });
  it('rejects bad UUIDs and labels', () => {
    expect(() => mkfsArgv({ device: '/dev/loop0', fs: 'ext4', uuid: 'random' })).toThrow(/UUID/);
    expect(() => mkfsArgv({ device: '/dev/loop0', fs: 'xfs', uuid: UUID, label: 'a-label-too-long' })).toThrow(/label/);
    expect(() => mkswapArgv({ device: '/dev/loop1', uuid: UUID, label: 'a b' })).toThrow(/label/);
  });
});
