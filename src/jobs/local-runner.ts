/**
 * Jobs run in this process (`vmforge serve`): a job is one use case call, recorded in the jobs table with its
 * request before it starts, its events numbered 1, 2, ... and kept (in memory while it runs, in job_events for
 * good), and its outcome. Watchers get the events from any point on (Last-Event-ID) and then live; a watcher
 * going away changes nothing for the job. Cancel aborts the use case's signal: the pipeline stops before its
 * next step and undoes what it did.
 */
import { errorSummary, type ErrorSummary } from '../errors.js';
import type { PipelineEvent } from '../pipeline/events.js';
import type { JobRepo } from '../store/jobs.js';
import type { JobStatus } from '../store/schema.js';

/** The last event of every job: how it ended. */
export interface JobFinishedEvent {
  type: 'job.finished';
  status: JobStatus;
  result?: unknown;
  problem?: ErrorSummary;
}

export type JobEvent = PipelineEvent | JobFinishedEvent;

export interface NumberedEvent {
  seq: number;
  event: JobEvent;
}

export interface JobWork<T> {
  kind: string;
  vm: string;
  /** Stored with the job as it was asked. */
  request: unknown;
  run(io: { jobId: number; emit: (e: PipelineEvent) => void; signal: AbortSignal }): Promise<T>;
  /** What the job's result is stored and shown as (default: the value itself). */
  resultView?(value: T): unknown;
}

interface ActiveJob {
  events: NumberedEvent[];
  watchers: Set<Watcher>;
  controller: AbortController;
  /** Events not yet in job_events. */
  unsaved: NumberedEvent[];
  saving: Promise<void>;
}

interface Watcher {
  onEvent(e: NumberedEvent): void;
  onEnd(): void;
}

export class LocalJobRunner {
  private readonly active = new Map<number, ActiveJob>();
  private readonly finished = new Set<Promise<unknown>>();

  constructor(
    private readonly jobs: JobRepo,
    private readonly onInternalError: (e: unknown, jobId: number) => void,
  ) {}

  /** Records the job and starts it; resolves with its id as soon as it is recorded. */
  async start<T>(work: JobWork<T>): Promise<number> {
    const jobId = await this.jobs.startRequested(work.kind, work.vm, work.request);
    const job: ActiveJob = { events: [], watchers: new Set(), controller: new AbortController(), unsaved: [], saving: Promise.resolve() };
    this.active.set(jobId, job);
    const emit = (event: JobEvent) => {
      const n = { seq: job.events.length + 1, event };
      job.events.push(n);
      job.unsaved.push(n);
      this.save(jobId, job);
      for (const w of job.watchers) w.onEvent(n);
    };
    const done = (async () => {
      let finished: JobFinishedEvent;
      try {
        const value = await work.run({ jobId, emit, signal: job.controller.signal });
        const result = work.resultView ? work.resultView(value) : value;
        await this.jobs.settle(jobId, { result });
        finished = { type: 'job.finished', status: 'succeeded', result };
      } catch (e) {
        const problem = errorSummary(e);
        await this.jobs.settle(jobId, { problem });
        finished = { type: 'job.finished', status: (await this.jobs.get(jobId))?.status ?? 'failed', problem };
      }
      emit(finished);
      await job.saving;
    })()
      // The store failing under a job is the server's to report; the job's own failures are its outcome above.
      .catch((e: unknown) => this.onInternalError(e, jobId))
      .finally(() => {
        this.active.delete(jobId);
        for (const w of job.watchers) w.onEnd();
        this.finished.delete(done);
      });
    this.finished.add(done);
    return jobId;
  }

  /** Batches of events go to job_events in order, one write at a time. */
  private save(jobId: number, job: ActiveJob): void {
    job.saving = job.saving.then(async () => {
      const batch = job.unsaved.splice(0);
      await this.jobs.appendEvents(jobId, batch);
    });
  }

  /** False when the job is not running in this process (finished, or another process's). */
  cancel(jobId: number, reason: string): boolean {
    const job = this.active.get(jobId);
    if (!job) return false;
    job.controller.abort(new Error(reason));
    return true;
  }

  isRunningHere(jobId: number): boolean {
    return this.active.has(jobId);
  }

  /**
   * Events after `afterSeq`, then live ones until the job ends (onEnd). A job that is not running here is
   * answered from job_events and ended at once. Returns the unsubscribe function.
   */
  async watch(jobId: number, afterSeq: number, watcher: Watcher): Promise<() => void> {
    const job = this.active.get(jobId);
    if (!job) {
      // A job leaves `active` only once all its events are saved, so job_events has every one of them.
      for (const n of await this.jobs.events(jobId, afterSeq)) watcher.onEvent(n as NumberedEvent);
      watcher.onEnd();
      return () => {};
    }
    // No await from here on: the replay and the subscription see the same list, nothing in between.
    for (const n of job.events) if (n.seq > afterSeq) watcher.onEvent(n);
    job.watchers.add(watcher);
    return () => job.watchers.delete(watcher);
  }

  /** Cancels every running job and waits until each has undone itself (server shutdown). */
  async stopAll(reason: string): Promise<void> {
    for (const job of this.active.values()) job.controller.abort(new Error(reason));
    await Promise.allSettled([...this.finished]);
  }

  /** Waits for the running jobs to end on their own. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.finished]);
  }
}
