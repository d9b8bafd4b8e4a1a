import type { Command } from 'commander';
import { invalidInput } from '../../errors.js';
import { rendererFor, withContext } from './shared.js';

export function registerRecoverCommand(program: Command): void {
  program
    .command('recover')
    .description('undo what builds or destroys left half-done when their process died (also runs before every build/destroy)')
    .option('--drop <job>', 'abandon the undo of this job (one that cannot complete): its pending changes are forgotten, listed for you to clean by hand')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExamples:\n  vmforge recover\n  vmforge recover --drop 42   # give up on job 42, whose undo keeps failing')
    .action(async (opts: { json?: boolean; drop?: string }, cmd: Command) => {
      const r = rendererFor(cmd);
      await withContext(cmd, async (ctx) => {
        const { abandonJob, recoverOrphans } = await import('../../app/recover.js');
        const { withHostLock } = await import('../../app/mutating.js');
        if (opts.drop !== undefined) {
          if (!/^[1-9]\d{0,15}$/.test(opts.drop)) throw invalidInput(`--drop '${opts.drop}' is not a job number`, "the job numbers are in 'vmforge recover' output");
          const jobId = Number(opts.drop);
          const a = await withHostLock(ctx, { skipRecover: true }, () => abandonJob(ctx, jobId));
          r.result(a, () =>
            [
              `abandoned job ${a.jobId} (${a.kind} ${a.vm}): ${a.abandoned.length} change(s) were NOT undone; clean them up by hand:`,
              ...a.abandoned.map((w) => `  - ${w}`),
            ].join('\n'),
          );
          return;
        }
        const { sweepStaleProbes } = await import('../../exec/host/accel-probe.js');
        const jobs = await withHostLock(ctx, { skipRecover: true }, () => recoverOrphans(ctx, (e) => r.event(e)));
        // Accelerator probe guests whose vmforge process was killed (the next probe would remove them too).
        const probes = await sweepStaleProbes(ctx.runner, { uri: ctx.config.libvirt.uri });
        const lines = [
          ...jobs.map((j) =>
            j.failures.length
              ? `job ${j.jobId} (${j.kind} ${j.vm}): undid ${j.undone} change(s); failed: ${j.failures.join('; ')}\n` +
                `  fix the cause (a config value such as dns.reverseZone is read again) and run 'vmforge recover' again, ` +
                `or give up on it with 'vmforge recover --drop ${j.jobId}' and clean up by hand what it lists`
              : `job ${j.jobId} (${j.kind} ${j.vm}): undid ${j.undone} change(s)`,
          ),
          ...probes.map((p) => `removed the accelerator probe domain ${p} (its process had died)`),
        ];
        r.result(jobs, () => (lines.length ? lines.join('\n') : 'nothing to recover'));
        if (jobs.some((j) => j.failures.length)) process.exitCode = 1;
      });
    });
}
