import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../errors.js';
import { DIRECT_IO_ENV, directIoWanted, type DirectIoSetting } from './direct-io.js';

describe('directIoWanted', () => {
  const cases: [DirectIoSetting, string | undefined, boolean][] = [
    ['off', undefined, false],
    ['on', undefined, true],
    ['off', '0', false],
    ['on', '0', false],
    ['off', '1', true],
    ['on', '1', true],
    // An empty variable (VMFORGE_DIRECT_IO= in a unit file) is the same as none.
    ['off', '', false],
    ['on', '', true],
    ['on', ' 0\n', false],
  ];
  it.each(cases)('bundles.directIo %s, VMFORGE_DIRECT_IO=%j: %s', (setting, value, want) => {
    const env = value === undefined ? {} : { [DIRECT_IO_ENV]: value };
    expect(directIoWanted(setting, env)).toBe(want);
  });

  it('refuses a value other than 0 or 1 instead of guessing', () => {
    for (const value of ['yes', 'true', 'on', '2']) {
      const e = (() => {
        try {
          directIoWanted('off', { [DIRECT_IO_ENV]: value });
        } catch (x) {
          return x;
        }
        return undefined;
      })();
      expect(e).toBeInstanceOf(VmforgeError);
      expect((e as VmforgeError).code).toBe('INVALID_INPUT');
      expect((e as Error).message).toBe(`VMFORGE_DIRECT_IO is '${value}'; expected 1 (O_DIRECT on) or 0 (off)`);
    }
  });
});
