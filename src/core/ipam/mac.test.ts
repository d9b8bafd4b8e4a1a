import { describe, expect, it } from 'vitest';
import { formatUuid, normalizeMac, pickMac } from './mac.js';

describe('mac', () => {
  it('picks under the prefix and avoids taken ones', () => {
    const seq = [new Uint8Array([1, 2, 3]), new Uint8Array([0xaa, 0xbb, 0xcc])];
    let i = 0;
    const mac = pickMac('52:54:00', ['52:54:00:01:02:03'], () => seq[i++] as Uint8Array);
    expect(mac).toBe('52:54:00:aa:bb:cc');
  });
  it('gives up on a full space', () => {
    expect(() => pickMac('52:54:00', ['52:54:00:00:00:00'], () => new Uint8Array(3))).toThrow(/free MAC/);
  });
  it('validates', () => {
    expect(normalizeMac('52-54-00-AA-bb-01')).toBe('52:54:00:aa:bb:01');
    expect(() => normalizeMac('01:00:5e:00:00:01')).toThrow(/multicast/);
    expect(() => normalizeMac('52:54:00:aa:bb')).toThrow(/not a MAC/);
  });
  it('formats v4 uuids', () => {
    expect(formatUuid(new Uint8Array(16).fill(0xff))).toBe('ffffffff-ffff-4fff-bfff-ffffffffffff');
  });
});
