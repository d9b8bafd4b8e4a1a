/** Finds host programs on PATH, so a build can say up front which tool is missing and which package has it. */
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { VmforgeError } from '../errors.js';
import { TOOL_PACKAGES } from './runner.js';

export async function which(program: string, path = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'): Promise<string | null> {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, program);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

export async function requireTools(programs: readonly string[]): Promise<void> {
  const missing: string[] = [];
  for (const p of programs) if (!(await which(p))) missing.push(p);
  if (!missing.length) return;
  const pkgs = [...new Set(missing.map((m) => TOOL_PACKAGES[m] ?? m))];
  throw new VmforgeError('MISSING_TOOL', `required host program(s) not installed: ${missing.join(', ')}`, {
    hint: `install with: apt-get install ${pkgs.join(' ')}`,
  });
}
