#!/usr/bin/env node
/**
 * vmforge CLI entry. Commands load their implementation lazily so `--help` and `--version` stay fast.
 * One top-level handler turns errors into messages and exit codes.
 */
import { Command, CommanderError } from 'commander';
import { EXIT_CODES, exitCodeOf, VmforgeError } from '../errors.js';
import { registerBundleCommands } from './commands/bundle.js';
import { registerVmCommands } from './commands/vm.js';
import { registerNetworkCommands } from './commands/network.js';
import { registerRecoverCommand } from './commands/recover.js';
import { registerRepoCommands } from './commands/repo.js';
import { registerCacheCommands } from './commands/cache.js';
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
  registerNetworkCommands(program);
  registerBundleCommands(program);
  registerRecoverCommand(program);
  registerRepoCommands(program);
  registerCacheCommands(program);
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

export function reportError(err: unknown, stderr: NodeJS.WritableStream = process.stderr, json = false): number {
  if (json && !(err instanceof CommanderError)) {
    // --json callers also get the error as the last JSON line on stdout (the text still goes to stderr).
    const e = err instanceof VmforgeError ? err : null;
    const error = { code: e?.code ?? 'INTERNAL', message: (err as Error)?.message ?? String(err), hint: e?.hint ?? null, undoErrors: e?.undoErrors.map((u) => u.message) ?? [] };
    process.stdout.write(`${JSON.stringify({ event: 'error', error, exitCode: exitCodeOf(err) })}\n`);
  }
  // Commander has already printed its message; a usage error (unknown option, missing argument) is bad input,
  // not the internal error its own exit status 1 would say.
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_CODES.INVALID_INPUT;
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
  // Subcommands exist already, so they do not inherit the override: without it on each, commander would
  // process.exit(1) on a usage error in a subcommand before reportError could choose the exit code.
  const overrideExit = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(overrideExit);
  };
  overrideExit(program);
  try {
    await program.parseAsync(argv);
  } catch (e) {
    process.exitCode = reportError(e, process.stderr, argv.includes('--json'));
  }
}

await main(process.argv);
