#!/usr/bin/env node
/**
 * vmforge CLI entry. Commands load their implementation lazily so `--help` and `--version` stay fast.
 * One top-level handler turns errors into messages and exit codes.
 */
import { Command, CommanderError } from 'commander';
import { exitCodeOf, VmforgeError } from '../errors.js';
import { registerBundleCommands } from './commands/bundle.js';
import { registerVmCommands } from './commands/vm.js';
import { registerRecoverCommand } from './commands/recover.js';
import { VERSION } from '../version.js';

export function makeProgram(): Command {
  const program = new Command('vmforge')
    .description('Build libvirt VMs from template bundles in one command: disk, guest setup, bootloader, domain, boot.')
    .version(VERSION, '-V, --version')
    .option('-c, --config <file>', 'config file (default /etc/vmforge/config.yaml, or $VMFORGE_CONFIG)')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false })
    .addHelpText(
      'after',
      `
Examples:
  vmforge bundle bootstrap debian            make a Debian bookworm template bundle
  vmforge vm build web1 --bundle debian-bookworm --memory 1G --disk 8G --wait
  vmforge vm list
  vmforge vm destroy web1

Docs: README.md and docs/ in the source tree.`,
    );
  registerVmCommands(program);
  registerBundleCommands(program);
  registerRecoverCommand(program);
  // Program options are parsed only before the subcommand, so a subcommand can own '--version' (bundle
  // create); every leaf command accepts --config itself so it can be given anywhere.
  program.enablePositionalOptions();
  const addConfig = (c: Command) => {
    if (c.commands.length) c.commands.forEach(addConfig);
    else if (c !== program) c.option('-c, --config <file>', 'config file (default /etc/vmforge/config.yaml, or $VMFORGE_CONFIG)');
  };
  addConfig(program);
  return program;
}

export function reportError(err: unknown, stderr: NodeJS.WritableStream = process.stderr): number {
  if (err instanceof CommanderError) return err.exitCode;
  if (err instanceof VmforgeError) {
    stderr.write(`error: ${err.message}\n`);
    if (err.hint) stderr.write(`hint: ${err.hint}\n`);
    for (const u of err.undoErrors) stderr.write(`undo also failed: ${u.message}\n`);
    if (err.undoErrors.length) stderr.write(`hint: run 'vmforge recover' to retry the undo\n`);
  } else {
    stderr.write(`internal error: ${(err as Error)?.stack ?? String(err)}\n`);
  }
  return exitCodeOf(err);
}

async function main(argv: string[]): Promise<void> {
  const program = makeProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    process.exitCode = reportError(e);
  }
}

await main(process.argv);
