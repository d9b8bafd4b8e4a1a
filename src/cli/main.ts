#!/usr/bin/env node
/**
 * vmforge CLI entry. It imports next to nothing until it knows it needs more: `--version` answers without
 * loading commander, and src/cli/program.ts loads only the command module argv names.
 */
import { VERSION } from '../version.js';
import { wantsVersion } from './argv.js';

// A reader that stops early (`vmforge vm list | head -1`) is not an error of ours: end quietly, as with SIGPIPE
// elsewhere, keeping the status the command had so far.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(process.exitCode ?? 0);
  });
}

if (wantsVersion(process.argv.slice(2))) {
  process.stdout.write(`${VERSION}\n`);
} else {
  const { runCli } = await import('./program.js');
  await runCli(process.argv);
}
