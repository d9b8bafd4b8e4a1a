import { describe, expect, it } from 'vitest';
import { MiB } from '../units.js';
import { swapHeaderBytes } from './swap-header.js';

describe('swapHeaderBytes', () => {
  it('matches what mkswap 2.38 writes for 64 MiB, UUID and label', () => {
    // Non-zero bytes of `mkswap -U 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d -L myswap` on a zeroed 64 MiB file.
    const page = swapHeaderBytes({ sizeBytes: 64 * MiB, uuid: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', label: 'myswap' });
    expect(page.length).toBe(4096);
    expect(page.subarray(0x400, 0x422).toString('hex')).toBe('01000000ff3f0000000000000a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d6d7973776170');
    expect(page.subarray(0xff6).toString('latin1')).toBe('SWAPSPACE2');
    const rest = Buffer.concat([page.subarray(0, 0x400), page.subarray(0x422, 0xff6)]);
    expect(rest.every((b) => b === 0)).toBe(true);
  });

  it('counts whole pages only and refuses tiny areas, long labels and bad UUIDs', () => {
    expect(swapHeaderBytes({ sizeBytes: 64 * MiB + 100, uuid: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d' }).readUInt32LE(1028)).toBe(16383);
    expect(() => swapHeaderBytes({ sizeBytes: 9 * 4096, uuid: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d' })).toThrow(/10 pages/);
    expect(() => swapHeaderBytes({ sizeBytes: MiB, uuid: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', label: 'x'.repeat(16) })).toThrow(/label/);
    expect(() => swapHeaderBytes({ sizeBytes: MiB, uuid: 'nope' })).toThrow(/UUID/);
  });
});
