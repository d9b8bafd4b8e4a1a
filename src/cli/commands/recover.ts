import type { Command } from 'commander';
import { rendererFor, withContext } from './shared.js';

export function registerRecoverCommand(program: Command): void {
  program
    .command('recover')
    .description('undo what builds or destroys left half-done when their process died (also runs before every build/destroy)')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExamples:\n  vmforge recover')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const r = rendererFor(cmd);
      await withContext(cmd, async (ctx) => {
        const { recoverOrphans } = await import('../../app/recover.js');
        const { withHostLock } = await import('../../app/mutating.js');
        const { sweepStaleProbes } = await import('../../exec/host/accel-probe.js');
        const jobs = await withHostLock(ctx, { skipRecover: true }, () => recoverOrphans(ctx, (e) => r.event(e)));
        // Accelerator probe guests whose vmforge process was killed (the next probe would remove them too).
        const probes = await sweepStaleProbes(ctx.runner, { uri: ctx.config.libvirt.uri });
        const lines = [
          ...jobs.map((j) => `job ${j.jobId} (${j.kind} ${j.vm}): undid ${j.undone} change(s)${j.failures.length ? `; failed: ${j.failures.join('; ')}` : ''}`),
          ...probes.map((p) => `removed the accelerator probe domain ${p} (its process had died)`),
        ];
        r.result(jobs, () => (lines.length ? lines.join('\n') : 'nothing to recover'));
        if (jobs.some((j) => j.failures.length)) process.exitCode = 1;
        void opts;
      });
    });
}
