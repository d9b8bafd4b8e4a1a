import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { commandNamed, wantsVersion } from './argv.js';
import { COMMAND_MODULES, makeProgram } from './program.js';

const REGEN = process.env.VMFORGE_REGEN_GOLDEN === '1';
const GOLDEN = join(import.meta.dirname, '__golden__', 'help.txt');

/** `vmforge PATH --help` as a pipe would get it (80 columns, no colour). */
function helpOf(cmd: Command): string {
  let out = '';
  cmd.configureHelp({ ...cmd.configureHelp(), helpWidth: 80 });
  cmd.configureOutput({ writeOut: (s) => (out += s), getOutHasColors: () => false });
  cmd.outputHelp();
  return out;
}

function walk(cmd: Command, path: string[], visit: (path: string[], cmd: Command) => void): void {
  visit(path, cmd);
  for (const sub of cmd.commands) walk(sub, [...path, sub.name()], visit);
}

async function allHelp(): Promise<string> {
  const parts: string[] = [];
  walk(await makeProgram(), [], (path, cmd) => parts.push(`$ vmforge ${[...path, '--help'].join(' ')}\n${helpOf(cmd)}`));
  return parts.join('\n');
}

describe('CLI command tree', () => {
  // The golden file is the help of every command before the lazy loading: it must not change by accident.
  it('prints the same help for every command as the golden file', async () => {
    const text = await allHelp();
    if (REGEN) writeFileSync(GOLDEN, text);
    if (!existsSync(GOLDEN)) throw new Error(`golden file ${GOLDEN} is missing; run with VMFORGE_REGEN_GOLDEN=1 and review it`);
    expect(text).toBe(readFileSync(GOLDEN, 'utf8'));
  });

  it('loads just the named command, with the same subtree and help as the full program', async () => {
    const full = await makeProgram();
    expect(full.commands.map((c) => c.name())).toEqual(COMMAND_MODULES.map((m) => m.name));
    for (const { name } of COMMAND_MODULES) {
      const one = await makeProgram(name);
      expect(one.commands.map((c) => c.name())).toEqual([name]);
      const fullSub = full.commands.find((c) => c.name() === name) as Command;
      const texts = (root: Command) => {
        const t: string[] = [];
        walk(root, [], (path, c) => t.push(`${path.join(' ')}\n${helpOf(c)}`));
        return t;
      };
      expect(texts(one.commands[0] as Command)).toEqual(texts(fullSub));
    }
  });

  it('builds the whole tree for an unknown command (so commander can suggest one)', async () => {
    expect((await makeProgram('vmm')).commands).toHaveLength(COMMAND_MODULES.length);
  });
});

describe('argv before commander', () => {
  it('answers --version only where commander would read it as the program option', () => {
    expect(wantsVersion(['--version'])).toBe(true);
    expect(wantsVersion(['-V'])).toBe(true);
    expect(wantsVersion(['-c', '/x.yaml', '-V'])).toBe(true);
    expect(wantsVersion(['--config=/x.yaml', '--version'])).toBe(true);
    expect(wantsVersion(['bundle', 'create', '--version', '2'])).toBe(false);
    expect(wantsVersion(['-c', '--version'])).toBe(false);
    expect(wantsVersion([])).toBe(false);
  });

  it('finds the top-level command after program options', () => {
    expect(commandNamed(['vm', 'build', '--help'])).toBe('vm');
    expect(commandNamed(['-c', '/x.yaml', 'network', 'list'])).toBe('network');
    expect(commandNamed(['--config=/x', '--help', 'bundle'])).toBe('bundle');
    expect(commandNamed(['--help'])).toBeUndefined();
    expect(commandNamed(['--bogus', 'vm'])).toBeUndefined();
    expect(commandNamed([])).toBeUndefined();
  });
});
