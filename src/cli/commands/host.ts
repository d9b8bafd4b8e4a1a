import type { Command } from 'commander';
import { withContext } from './shared.js';

export function registerHostCommands(program: Command): void {
  const host = program
    .command('host')
    .description('this hypervisor host: is everything a build needs here, and working?')
    .addHelpText('after', '\nExamples:\n  vmforge host check\n  vmforge host check --json | jq \'.results[] | select(.status != "ok")\'\n\nSee docs/host.md.');

  host
    .command('check')
    .description('check for real every fact a build depends on (libvirt and its speed, KVM or TCG, loop devices, FUSE, GRUB, tools, bridges, DNS, free space, state): one line each, with the fix')
    .option('--no-probe', 'judge KVM from the host facts and a cached probe only (no throwaway guest)')
    .option('--json', 'JSON output: {results: [...], summary}')
    .addHelpText(
      'after',
      `
Each line is ✓ (works), ⚠ (works with a limit, e.g. TCG instead of KVM) or ✗ (builds fail until fixed), with the
fix under it. Exit status 0 when nothing is ✗, 1 otherwise.

Examples:
  vmforge host check
  vmforge host check --no-probe
  vmforge host check --json`,
    )
    .action(async (opts: { json?: boolean; probe: boolean }, cmd: Command) => {
      await withContext(
        cmd,
        async (ctx) => {
          const { hostCheck } = await import('../../app/host-check.js');
          const { summarize } = await import('../../core/host/check-report.js');
          const { renderCheckLine } = await import('../check-render.js');
          const out = process.stdout;
          if (!opts.json) out.write(`vmforge host check (config: ${ctx.config.source ?? 'built-in defaults'}, libvirt: ${ctx.config.libvirt.uri})\n`);
          const results = await hostCheck(ctx, { probe: opts.probe, onResult: (r) => !opts.json && out.write(renderCheckLine(r)) });
          const summary = summarize(results);
          if (opts.json) out.write(`${JSON.stringify({ results, summary }, null, 2)}\n`);
          else out.write(`${summary.ok} ✓  ${summary.warn} ⚠  ${summary.fail} ✗${summary.fail ? '  (builds will fail until the ✗ lines are fixed)' : ''}\n`);
          process.exitCode = summary.exitCode;
        },
        { readOnly: true },
      );
    });
}
