/**
 * Runs steps in order. Each step journals an undo record before each side effect; on failure or abort every
 * pending record of the job is undone newest first. Undo failures are attached to the original error.
 */
import { VmforgeError } from '../errors.js';
import type { JobRepo } from '../store/jobs.js';
import type { EventSink } from './events.js';
import { InjectedFault, type FaultPoint } from './fault.js';
import { describeUndo, runUndo, type UndoRecord, type UndoRegistry } from './undo.js';

export interface UndoHandle {
  /** The side effect turned out not to be ours (e.g. the file existed already): drop its undo record. */
  cancel(): Promise<void>;
}

export interface StepContext {
  signal: AbortSignal;
  /** Journal the undo of a side effect, before performing it. */
  willUndo(record: UndoRecord): Promise<UndoHandle>;
  progress(done: number, total: number | undefined, unit: string): void;
  info(message: string): void;
}

export interface Step<S> {
  id: string;
  title: string;
  run(ctx: StepContext, state: S): Promise<void>;
}

export interface StepTiming {
  step: string;
  title: string;
  durationMs: number;
  status: 'done' | 'failed';
}

export interface PipelineOptions<S> {
  steps: Step<S>[];
  state: S;
  jobs: JobRepo;
  jobId: number;
  undo: UndoRegistry;
  emit: EventSink;
  signal: AbortSignal;
  fault?: FaultPoint | null;
  /** Monotonic clock in ms (injected for tests). */
  clock?: () => number;
}

export async function runPipeline<S>(o: PipelineOptions<S>): Promise<StepTiming[]> {
  const clock = o.clock ?? (() => performance.now());
  const t0 = clock();
  const timings: StepTiming[] = [];
  const total = o.steps.length;
  try {
    for (const [index, step] of o.steps.entries()) {
      if (o.signal.aborted) throw new VmforgeError('CANCELLED', `cancelled before step '${step.title}'`);
      if (o.fault?.when === 'pause' && o.fault.step === step.id) process.kill(process.pid, 'SIGSTOP');
      if (o.fault?.when === 'before' && o.fault.step === step.id) throw new InjectedFault(o.fault);
      o.emit({ type: 'step.start', step: step.id, title: step.title, index, total });
      const started = clock();
      const startedAt = new Date().toISOString();
      const ctx: StepContext = {
        signal: o.signal,
        willUndo: async (record) => {
          const id = await o.jobs.appendUndo(o.jobId, step.id, record);
          return { cancel: () => o.jobs.dropUndo(id) };
        },
        progress: (done, totalUnits, unit) => o.emit({ type: 'step.progress', step: step.id, done, total: totalUnits, unit }),
        info: (message) => o.emit({ type: 'step.info', step: step.id, message }),
      };
      try {
        await step.run(ctx, o.state);
        if (o.signal.aborted) throw new VmforgeError('CANCELLED', `cancelled during step '${step.title}'`);
      } catch (e) {
        const durationMs = clock() - started;
        timings.push({ step: step.id, title: step.title, durationMs, status: 'failed' });
        await o.jobs.recordTiming(o.jobId, { stepId: step.id, title: step.title, status: 'failed', durationMs, startedAt });
        o.emit({ type: 'step.failed', step: step.id, title: step.title, durationMs, error: (e as Error).message });
        throw e;
      }
      const durationMs = clock() - started;
      timings.push({ step: step.id, title: step.title, durationMs, status: 'done' });
      await o.jobs.recordTiming(o.jobId, { stepId: step.id, title: step.title, status: 'done', durationMs, startedAt });
      o.emit({ type: 'step.done', step: step.id, title: step.title, durationMs });
      if (o.fault?.when === 'after' && o.fault.step === step.id) throw new InjectedFault(o.fault);
    }
  } catch (e) {
    // Whatever a step threw after Ctrl-C (a killed child process, say) is a consequence of the cancel.
    const err =
      o.signal.aborted && !(e instanceof VmforgeError && e.code === 'CANCELLED')
        ? new VmforgeError('CANCELLED', `cancelled (${abortReason(o.signal)}): ${(e as Error).message}`, { cause: e })
        : e instanceof VmforgeError
          ? e
          : new VmforgeError('INTERNAL', (e as Error).message, { cause: e });
    const { undone, failures } = await undoJob(o.jobs, o.jobId, o.undo, o.emit, clock);
    err.undoErrors = failures;
    await o.jobs.finish(o.jobId, failures.length ? 'undo-failed' : 'undone', err.message);
    o.emit({ type: 'pipeline.failed', durationMs: clock() - t0, error: err.message, undone, undoFailures: failures.length });
    throw err;
  }
  await o.jobs.clearJournal(o.jobId);
  await o.jobs.finish(o.jobId, 'succeeded');
  o.emit({ type: 'pipeline.done', durationMs: clock() - t0 });
  return timings;
}

function abortReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  return r instanceof Error ? r.message : typeof r === 'string' ? r : 'aborted';
}

/** Undoes every pending record of a job, newest first. Used after a failure and by crash recovery. */
export async function undoJob(
  jobs: JobRepo,
  jobId: number,
  registry: UndoRegistry,
  emit: EventSink,
  clock: () => number = () => performance.now(),
): Promise<{ undone: number; failures: Error[] }> {
  const pending = await jobs.pendingUndo(jobId);
  emit({ type: 'undo.start', count: pending.length });
  const failures: Error[] = [];
  let undone = 0;
  for (const entry of pending) {
    const what = describeUndo(entry.record);
    const started = clock();
    try {
      await runUndo(registry, entry.record);
      await jobs.markUndone(entry.id);
      undone++;
      emit({ type: 'undo.done', what, durationMs: clock() - started });
    } catch (e) {
      failures.push(new Error(`${what}: ${(e as Error).message}`));
      emit({ type: 'undo.failed', what, error: (e as Error).message });
    }
  }
  return { undone, failures };
}
