/**
 * vmforge never starts a program through a shell: every argument it passes may come from a user (a VM name, a
 * path) and a shell would re-parse it. The lint rules forbid exec() and the shell option; this refuses the other way in,
 * `sh -c STRING`, at run time in every spawn path (run, pipeline, daemon).
 */
import { VmforgeError } from '../errors.js';

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'csh', 'tcsh', 'fish', 'busybox']);

export function refuseShell(argv: readonly string[]): void {
  const file = argv[0] ?? '';
  const base = file.slice(file.lastIndexOf('/') + 1);
  if (SHELLS.has(base)) {
    throw new VmforgeError('INTERNAL', `refusing to start a shell (${base}): vmforge runs programs with argv arrays only`);
  }
}
