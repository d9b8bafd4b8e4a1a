/**
 * `vm build --count N PATTERN`: the names of the N VMs, from a pattern with exactly one `%d`. Every name is
 * validated before anything is built, so a bad pattern (or one whose 10th name is too long) makes nothing.
 */
import { invalidInput } from '../../errors.js';
import { validateVmName } from '../names.js';

/** Most VMs one command builds: a typo in --count should not fill the host. */
export const MAX_COUNT = 1000;

export function expandNamePattern(pattern: string, count: number, first = 1): string[] {
  if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT) throw invalidInput(`--count '${count}' must be a whole number from 1 to ${MAX_COUNT}`);
  if (!Number.isInteger(first) || first < 0) throw invalidInput(`--first '${first}' must be a whole number, 0 or more`);
  const holes = pattern.split('%d').length - 1;
  if (holes !== 1) {
    throw invalidInput(
      `name pattern '${pattern}' has ${holes} '%d'; it needs exactly one (the VM's number)`,
      `e.g. vmforge vm build web-%d --count ${count} ...`,
    );
  }
  // Any other '%' would be left in the names, where validateVmName refuses it anyway; naming it here is clearer.
  if (pattern.replace('%d', '').includes('%')) throw invalidInput(`name pattern '${pattern}' has a '%' other than the one '%d'`);
  return Array.from({ length: count }, (_, i) => {
    const name = pattern.replace('%d', String(first + i));
    try {
      return validateVmName(name);
    } catch (e) {
      throw invalidInput(`name pattern '${pattern}' makes '${name}', which is not a valid VM name: ${(e as Error).message}`, (e as { hint?: string }).hint);
    }
  });
}
