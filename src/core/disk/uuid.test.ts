import { describe, expect, it } from 'vitest';
import { isUuid, uuidFromBytes } from './uuid.js';

describe('uuidFromBytes', () => {
  it('formats 16 bytes as a version-4 RFC 4122 UUID', () => {
    expect(uuidFromBytes(new Uint8Array(16).fill(0xff))).toBe('ffffffff-ffff-4fff-bfff-ffffffffffff');
    expect(uuidFromBytes(new Uint8Array(16))).toBe('00000000-0000-4000-8000-000000000000');
    const u = uuidFromBytes(Uint8Array.from({ length: 16 }, (_, i) => i * 17));
    expect(isUuid(u)).toBe(true);
  });
  it('does not modify its input', () => {
    const bytes = new Uint8Array(16).fill(0xff);
    uuidFromBytes(bytes);
    expect(bytes[6]).toBe(0xff);
  });
  it('needs exactly 16 bytes', () => {
    expect(() => uuidFromBytes(new Uint8Array(15))).toThrow(/16/);
  });
  it('isUuid wants lower-case canonical form', () => {
    expect(isUuid('94F46FC5-903E-499A-BBA3-04D255B3FF9D')).toBe(false);
    expect(isUuid('94f46fc5903e499abba304d255b3ff9d')).toBe(false);
  });
});
