/**
 * The commander program. Each top-level command's module is loaded only when argv names that command, so
 * `vmforge network list` never parses the bundle or vm command modules; the full tree is built only when no
 * known command is named (top-level --help, `help`, a typo that wants a suggestion).
 */
import { Command, CommanderError } from 'commander';
import { EXIT_CODES, exitCodeOf, VmforgeError } from '../errors.js';
import { VERSION } from '../version.js';
import { commandNamed } from './argv.js';

const CONFIG_FLAGS = '-c, --config <file>';
const CONFIG_HELP = 'config file (default /etc/vmforge/config.yaml, or $VMFORGE_CONFIG)';

/** Top-level commands in help order, each with the loader of the module that registers it. */
export const COMMAND_MODULES: ReadonlyArray<{ name: string; register(): Promise<(program: Command) => void> }> = [
  { name: 'vm', register: async () => (await import('./commands/vm.js')).registerVmCommands },
  { name: 'network', register: async () => (await import('./commands/network.js')).registerNetworkCommands },
  { name: 'bundle', register: async () => (await import('./commands/bundle.js')).registerBundleCommands },
  { name: 'recover', register: async () => (await import('./commands/recover.js')).registerRecoverCommand },
  { name: 'serve', register: async () => (await import('./commands/serve.js')).registerServeCommand },
  { name: 'token', register: async () => (await import('./commands/token.js')).registerTokenCommands },
  { name: 'repo', register: async () => (await import('./commands/repo.js')).registerRepoCommands },
  { name: 'cache', register: async () => (await import('./commands/cache.js')).registerCacheCommands },
  { name: 'host', register: async () => (await import('./commands/host.js')).registerHostCommands },
];

/** The program with every command (only: just the named top-level command, when it is one of ours). */
export async function makeProgram(only?: string): Promise<Command> {
  const program = new Command('vmforge')
    .description('Build libvirt VMs from template bundles in one command: disk, guest setup, bootloader, domain, boot.')
    .version(VERSION, '-V, --version')
    .option(CONFIG_FLAGS, CONFIG_HELP)
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false })
    .addHelpText(
      'after',
      `
Examples:
  vmforge host check                         is this host ready to build VMs?
  vmforge bundle bootstrap debian            make a Debian bookworm template bundle
  vmforge vm build web1 --bundle debian-bookworm --memory 1G --disk 8G --wait
  vmforge vm list
  vmforge vm destroy web1

Docs: README.md and docs/ in the source tree.`,
    );
  const selected = COMMAND_MODULES.filter((m) => m.name === only);
  const modules = selected.length ? selected : COMMAND_MODULES;
  const registers = await Promise.all(modules.map((m) => m.register()));
  for (const register of registers) register(program);
  // Program options are parsed only before the subcommand, so a subcommand can own '--version' (bundle
  // create); every leaf command accepts --config itself so it can be given anywhere.
  program.enablePositionalOptions();
  const addConfig = (c: Command) => {
    if (c.commands.length) c.commands.forEach(addConfig);
    else if (c !== program) c.option(CONFIG_FLAGS, CONFIG_HELP);
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
    // The built CLI is a bundle: its stack lines point into dist/chunks. Node maps them to src/ through the
    // linked source maps only when enabled at start-up, which costs every command ~50-90 ms, so on request.
    if (!process.sourceMapsEnabled) stderr.write('hint: run it again with NODE_OPTIONS=--enable-source-maps for the stack in src/ lines\n');
  }
  return exitCodeOf(err);
}

export async function runCli(argv: string[]): Promise<void> {
  const program = await makeProgram(commandNamed(argv.slice(2)));
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
