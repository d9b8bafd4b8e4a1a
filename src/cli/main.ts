#!/usr/bin/env node
/**
 * vmforge CLI entry. It imports next to nothing until it knows it needs more: `--version` answers without
 * loading commander, and src/cli/program.ts loads only the command module argv names.
 */
import { VERSION } from '../version.js';
import { wantsVersion } from './argv.js';

if (wantsVersion(process.argv.slice(2))) {
  process.stdout.write(`${VERSION}\n`);
} else {
  const { runCli } = await import('./program.js');
  await runCli(process.argv);
}
