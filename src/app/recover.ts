/**
 * Crash recovery: jobs still marked running whose process is gone left undo records behind; undo them now.
 * Runs at the start of every mutating command and on demand (`vmforge recover`).
 */
import type { EventSink } from '../pipeline/events.js';
import { undoJob } from '../pipeline/pipeline.js';
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
