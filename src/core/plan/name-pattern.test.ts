import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../../errors.js';
import { expandNamePattern } from './name-pattern.js';

const refused = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(VmforgeError);
    expect((e as VmforgeError).code).toBe('INVALID_INPUT');
    return (e as Error).message;
  }
  throw new Error('expected INVALID_INPUT');
};

describe('expandNamePattern', () => {
  it('numbers from 1, or from --first', () => {
    expect(expandNamePattern('web-%d', 3)).toEqual(['web-1', 'web-2', 'web-3']);
    expect(expandNamePattern('db%d-a', 2, 9)).toEqual(['db9-a', 'db10-a']);
    expect(expandNamePattern('%d-x', 1, 0)).toEqual(['0-x']);
  });

  it('needs exactly one %d', () => {
    expect(refused(() => expandNamePattern('web', 2))).toContain("has 0 '%d'");
    expect(refused(() => expandNamePattern('web-%d-%d', 2))).toContain("has 2 '%d'");
    expect(refused(() => expandNamePattern('web-%s-%d', 2))).toContain("a '%' other than");
  });

  it('refuses the whole pattern when any name it makes is invalid', () => {
    expect(refused(() => expandNamePattern('Web-%d', 2))).toContain("makes 'Web-1'");
    // 62 characters + '9' fits; + '10' is 64, one too many: caught before the first VM is built.
    const long = `${'a'.repeat(62)}%d`;
    expect(expandNamePattern(long, 9)).toHaveLength(9);
    expect(refused(() => expandNamePattern(long, 10))).toContain(`makes '${'a'.repeat(62)}10'`);
    expect(refused(() => expandNamePattern('-%d', 1))).toContain("makes '-1'");
  });

  it('refuses counts and first numbers that are not whole', () => {
    expect(refused(() => expandNamePattern('w%d', 0))).toContain('--count');
    expect(refused(() => expandNamePattern('w%d', 1.5))).toContain('--count');
    expect(refused(() => expandNamePattern('w%d', 5000))).toContain('--count');
    expect(refused(() => expandNamePattern('w%d', 2, -1))).toContain('--first');
  });
});
