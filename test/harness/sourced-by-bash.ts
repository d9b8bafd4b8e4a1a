/**
 * What the shell makes of a shell-variable file (an ifcfg-* or /etc/sysconfig file), read the way initscripts read
 * them: `. FILE` in bash. Guest files are never run as shell on the host unconfined, so bash runs under bubblewrap:
 * no network, no writable path, an empty environment, no capabilities, only /usr read-only and the file. Even a
 * hostile file (a `$(...)` in a value) can then do nothing but print.
 */
import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Prints, NUL-separated, NAME=VALUE of every variable the file set that bash did not have before, and of the names
// given as arguments (bash presets some names such files use, HOSTNAME for one).
const SCRIPT = `
__file=$1; shift; __names=" $* "
declare -A __pre; for __v in $(compgen -v); do __pre[$__v]=1; done
. "$__file" || exit 97
for __v in $(compgen -v); do
  case $__v in __*|BASH*|_|FUNCNAME|PIPESTATUS) continue;; esac
  if [[ -z \${__pre[$__v]-} || $__names == *" $__v "* ]]; then printf '%s=%s\\0' "$__v" "\${!__v-}"; fi
done`;

export interface BashReading {
  vars: Map<string, string>;
  /** Whatever bash said on stderr (a syntax error, a command not found): empty for a well-formed file. */
  stderr: string;
}

export async function sourcedByBash(text: string, alsoReport: readonly string[] = []): Promise<BashReading> {
  const dir = await mkdtemp(join(tmpdir(), 'gf-bash-'));
  try {
    const file = join(dir, 'vars');
    await writeFile(file, text, { mode: 0o644 });
    // prettier-ignore
    const argv = [
      '--ro-bind', '/usr', '/usr', '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64',
      '--ro-bind', file, '/vars', '--proc', '/proc', '--dev', '/dev',
      '--unshare-all', '--die-with-parent', '--new-session', '--clearenv', '--cap-drop', 'ALL',
      '/usr/bin/bash', '--norc', '--noprofile', '-c', SCRIPT, 'bash', '/vars', ...alsoReport,
    ];
    const r = await execa('bwrap', argv, { reject: false, timeout: 20_000, encoding: 'utf8', stripFinalNewline: false });
    if (r.failed && r.exitCode === undefined) throw new Error(`bwrap did not run (${r.message}); install bubblewrap (scripts/install-deps.sh)`);
    if (r.exitCode !== 0) throw new Error(`bash sourcing the file under bwrap exited ${r.exitCode}: ${String(r.stderr)}`);
    const vars = new Map<string, string>();
    for (const pair of String(r.stdout).split('\0').filter(Boolean)) {
      const eq = pair.indexOf('=');
      vars.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return { vars, stderr: String(r.stderr) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
