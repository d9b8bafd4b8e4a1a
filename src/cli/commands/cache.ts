import type { Command } from 'commander';
import { withContext } from './shared.js';
import { table } from '../render.js';
import { formatSize } from '../../core/units.js';

export function registerCacheCommands(program: Command): void {
  const cache = program
    .command('cache')
    .description('golden images the warm build (--clone) clones VM disks from, and the GRUB core.img cache')
    .addHelpText('after', '\nExamples:\n  vmforge cache list\n  vmforge cache prune --dry-run');

  cache
    .command('list')
    .description('list golden images (key, bundle, size, the VMs whose disks use them) and the GRUB core.img cache')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const { listGoldenImages } = await import('../../app/golden-cache.js');
        const gs = await listGoldenImages(ctx);
        // The JSON stays the golden images' array (scripts read it); the GRUB line is for people.
        if (opts.json) return void process.stdout.write(`${JSON.stringify(gs, null, 2)}\n`);
        const { grubCoreCacheDir, listGrubCoreCache } = await import('../../app/grub-core-cache.js');
        const grub = await listGrubCoreCache(ctx.config);
        const out = gs.length
          ? table(
              gs.map((g) => [g.key, g.bundles.join(', ') || '-', formatSize(g.bytes), formatSize(g.allocatedBytes), g.users.length ? g.users.join(', ') : '-']),
              ['KEY', 'BUNDLE', 'SIZE', 'ON DISK', 'USERS'],
            )
          : 'no golden images';
        process.stdout.write(`${out}\n`);
        if (grub.length) {
          const current = grub.filter((g) => g.state === 'current');
          const bytes = grub.reduce((n, g) => n + g.bytes, 0);
          process.stdout.write(
            `GRUB core.img cache (${grubCoreCacheDir(ctx.config)}): ${grub.length} file(s), ${formatSize(bytes)}; current for this host: ${
              current.map((g) => g.fs).join(', ') || 'none'
            }\n`,
          );
        }
      }, { readOnly: true });
    });

  cache
    .command('prune')
    .description('remove golden images no VM uses (a VM being built from the same bundle counts as a user) and GRUB core.img files this host can no longer use')
    .option('--dry-run', 'only list what would be removed')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean; dryRun?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const { pruneGoldenImages } = await import('../../app/golden-cache.js');
        const { pruneGrubCoreCache } = await import('../../app/grub-core-cache.js');
        const res = await pruneGoldenImages(ctx, { dryRun: Boolean(opts.dryRun) });
        const grubCore = await pruneGrubCoreCache(ctx.config, { dryRun: Boolean(opts.dryRun), nowMs: Date.now() });
        if (opts.json) return void process.stdout.write(`${JSON.stringify({ ...res, grubCore }, null, 2)}\n`);
        const verb = opts.dryRun ? 'would remove' : 'removed';
        const why = { stale: 'made by a GRUB no longer installed', temp: 'left by an interrupted write', current: 'corrupt' } as const;
        const lines = [
          ...res.removed.map((g) => `${verb} ${g.key} (${formatSize(g.allocatedBytes)} on disk)`),
          ...res.kept.map((g) => `kept ${g.key}: used by ${g.users.join(', ') || 'a build in progress'}`),
          ...grubCore.removed.map((g) => `${verb} GRUB core.img ${g.name} (${why[g.state]})`),
        ];
        process.stdout.write(`${lines.length ? lines.join('\n') : 'no golden images'}\n`);
      });
    });
}
