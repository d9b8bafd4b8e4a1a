/**
 * Golden files: `matchGolden(import.meta.dirname, 'x.xml', actual)` compares with `__golden__/x.xml` next to the
 * test; VMFORGE_REGEN_GOLDEN=1 rewrites the file instead (review the diff before committing it).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

export function matchGolden(testDir: string, file: string, actual: string): void {
  const path = join(testDir, '__golden__', file);
  if (process.env.VMFORGE_REGEN_GOLDEN === '1') writeFileSync(path, actual);
  expect(actual).toBe(readFileSync(path, 'utf8'));
}
