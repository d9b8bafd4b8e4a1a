/**
 * Crash recovery: jobs still marked running whose process is gone left undo records behind; undo them now.
 * Runs at the start of every mutating command and on demand (`vmforge recover`).
 */
import { notFound } from '../errors.js';
import type { EventSink } from '../pipeline/events.js';
import { undoJob } from '../pipeline/pipeline.js';
import { describeUndo } from '../pipeline/undo.js';
import type { AppContext } from './context.js';
import { undoRegistry } from './undo-executors.js';
import { pidAlive } from '../exec/pid.js';

export interface RecoveredJob {
  jobId: number;
  kind: string;
  vm: string;
  undone: number;
  failures: string[];
}

export async function recoverOrphans(ctx: AppContext, emit: EventSink = () => {}): Promise<RecoveredJob[]> {
  const out: RecoveredJob[] = [];
  for (const job of await ctx.jobs.orphaned(pidAlive)) {
    const { undone, failures } = await undoJob(ctx.jobs, job.id, undoRegistry(ctx), emit);
    await ctx.jobs.finish(job.id, failures.length ? 'undo-failed' : 'undone', `recovered: process ${job.pid} had died`);
    out.push({ jobId: job.id, kind: job.kind, vm: job.vm_name, undone, failures: failures.map((f) => f.message) });
  }
  return out;
}

export interface AbandonedJob {
  jobId: number;
  kind: string;
  vm: string;
  /** What was left undone, in undo order: for the admin to clean by hand. */
  abandoned: string[];
}

/**
 * `recover --drop JOB`: gives up on a job whose undo cannot complete (a DNS server that will never accept the
 * removal, a device that is gone for good). Its pending undo records are deleted without being run, the job is
 * closed as failed, and the caller is told exactly what was not undone.
 */
export async function abandonJob(ctx: AppContext, jobId: number): Promise<AbandonedJob> {
  const job = (await ctx.jobs.orphaned(pidAlive)).find((j) => j.id === jobId);
  if (!job) {
    throw notFound(
      `job ${jobId} has nothing left for recover to undo (it does not exist, finished, or its process is still running)`,
      "run 'vmforge recover' to see the jobs whose undo failed",
    );
  }
  const pending = await ctx.jobs.pendingUndo(jobId);
  for (const entry of pending) await ctx.jobs.dropUndo(entry.id);
  const abandoned = pending.map((e) => describeUndo(e.record));
  await ctx.jobs.finish(jobId, 'failed', `abandoned by 'vmforge recover --drop ${jobId}'; not undone: ${abandoned.join('; ') || '(nothing)'}`);
  return { jobId, kind: job.kind, vm: job.vm_name, abandoned };
}
