import { availableParallelism, setPriority } from 'node:os';
import { Option, type Command } from 'commander';
import { interruptSignal, withContext } from './shared.js';
import { invalidInput } from '../../errors.js';
import { table } from '../render.js';
import { formatSize } from '../../core/units.js';

export function registerCacheCommands(program: Command): void {
  const cache = program
    .command('cache')
    .description('golden images the warm build (--clone) clones VM disks from, the GRUB core.img cache, and the SSH host key pool')
    .addHelpText('after', '\nExamples:\n  vmforge cache list\n  vmforge cache prune --dry-run\n  vmforge cache keys --fill');

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

  cache
    .command('keys')
    .description('the pool of RSA host keys made ahead, so builds do not wait for them (config ssh.hostKeyPool)')
    .option('--fill', 'make keys until the pool is full (waits for a filler already running, then tops up)')
    .option('--clear', 'remove every pooled key')
    .addOption(new Option('--background', 'the low-priority filler a build starts').hideHelp())
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExamples:\n  vmforge cache keys\n  vmforge cache keys --fill      # before a burst of builds\n  vmforge cache keys --clear')
    .action(async (opts: { fill?: boolean; clear?: boolean; background?: boolean; json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const pool = await import('../../exec/tools/host-key-pool.js');
        const dir = pool.hostKeyPoolDir(ctx.config.stateDir);
        const target = ctx.config.ssh.hostKeyPool;
        if (opts.fill && opts.clear) throw invalidInput('--fill and --clear exclude each other');
        if (opts.background) {
          setPriority(19);
          await pool.fillPool(dir, target, { lockTakenForMe: true });
          return;
        }
        if (opts.clear) {
          const removed = await pool.clearPool(dir);
          if (opts.json) return void process.stdout.write(`${JSON.stringify({ removed }, null, 2)}\n`);
          return void process.stdout.write(`removed ${removed} pooled host key${removed === 1 ? '' : 's'}\n`);
        }
        if (opts.fill) {
          if (target <= 0) throw invalidInput('the host key pool is off (ssh.hostKeyPool: 0)', 'set ssh.hostKeyPool in the config file to the number of keys to keep');
          const { signal, dispose } = interruptSignal();
          try {
            for (;;) {
              const res = await pool.fillPool(dir, target, {
                signal,
                concurrency: Math.min(availableParallelism(), 4),
                onKey: (n) => !opts.json && process.stderr.write(`  host key pool: ${n} of ${target}\n`),
              });
              if (!res.busy || signal.aborted) break;
              // Another filler (a build's background one) holds the pool: wait for it, then top up.
              await new Promise((r) => setTimeout(r, 250));
            }
          } finally {
            dispose();
          }
        }
        const status = { dir, count: await pool.pooledKeyCount(dir), target, type: `rsa-${pool.POOLED_RSA_BITS}`, fillerRunning: await pool.fillerRunning(dir) };
        if (opts.json) return void process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
        const off = target === 0 ? ' (pool off: ssh.hostKeyPool is 0)' : '';
        process.stdout.write(`host key pool: ${status.count} of ${target} ${status.type} keys ready${status.fillerRunning ? ', filler running' : ''}${off}\n`);
      }, { readOnly: !opts.fill && !opts.clear });
    });
}
