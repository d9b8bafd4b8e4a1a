import type { Command } from 'commander';
import { withContext } from './shared.js';
import { table } from '../render.js';
import { formatSize } from '../../core/units.js';

export function registerCacheCommands(program: Command): void {
  const cache = program
    .command('cache')
    .description('golden images the warm build (--clone) clones VM disks from')
    .addHelpText('after', '\nExamples:\n  vmforge cache list\n  vmforge cache prune --dry-run');

  cache
    .command('list')
    .description('list golden images: key, bundle, size, the VMs whose disks use them')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const { listGoldenImages } = await import('../../app/golden-cache.js');
        const gs = await listGoldenImages(ctx);
        if (opts.json) return void process.stdout.write(`${JSON.stringify(gs, null, 2)}\n`);
        if (!gs.length) return void process.stdout.write('no golden images\n');
        process.stdout.write(
          `${table(
            gs.map((g) => [g.key, g.bundles.join(', ') || '-', formatSize(g.bytes), formatSize(g.allocatedBytes), g.users.length ? g.users.join(', ') : '-']),
            ['KEY', 'BUNDLE', 'SIZE', 'ON DISK', 'USERS'],
          )}\n`,
        );
      }, { readOnly: true });
    });

  cache
    .command('prune')
    .description('remove golden images no VM uses (a VM being built from the same bundle counts as a user)')
    .option('--dry-run', 'only list what would be removed')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean; dryRun?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const { pruneGoldenImages } = await import('../../app/golden-cache.js');
        const res = await pruneGoldenImages(ctx, { dryRun: Boolean(opts.dryRun) });
        if (opts.json) return void process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
        const verb = opts.dryRun ? 'would remove' : 'removed';
        const lines = [
          ...res.removed.map((g) => `${verb} ${g.key} (${formatSize(g.allocatedBytes)} on disk)`),
          ...res.kept.map((g) => `kept ${g.key}: used by ${g.users.join(', ') || 'a build in progress'}`),
        ];
        process.stdout.write(`${lines.length ? lines.join('\n') : 'no golden images'}\n`);
      });
    });
}
