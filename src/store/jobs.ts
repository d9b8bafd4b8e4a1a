import type { UndoRecord } from '../pipeline/undo.js';
import type { Db } from './db.js';
import type { JobStatus } from './schema.js';

export interface JournalEntry {
  id: number;
  stepId: string;
  record: UndoRecord;
}

/** Jobs, their undo journal and their step timings. */
export class JobRepo {
  constructor(private readonly db: Db) {}

  async start(kind: string, vmName: string): Promise<number> {
    const row = await this.db
      .insertInto('jobs')
      .values({ kind, vm_name: vmName, status: 'running', pid: process.pid, error: null, started_at: now(), finished_at: null })
      .returning('id')
      .executeTakeFirstOrThrow();
    return row.id;
  }

  /** A job the API runs: recorded with its request before the use case starts, so its id can be answered at once. */
  async startRequested(kind: string, vmName: string, request: unknown): Promise<number> {
    const row = await this.db
      .insertInto('jobs')
      .values({ kind, vm_name: vmName, status: 'running', pid: process.pid, error: null, started_at: now(), finished_at: null, request: JSON.stringify(request) })
      .returning('id')
      .executeTakeFirstOrThrow();
    return row.id;
  }

  /**
   * How an API job ended. The pipeline has set the status already when it ran (succeeded, undone, undo-failed);
   * a job that failed before its pipeline started (a refused request) is still 'running' and becomes 'failed'.
   */
  async settle(id: number, outcome: { result: unknown } | { problem: unknown }): Promise<void> {
    const failed = 'problem' in outcome;
    await this.db
      .updateTable('jobs')
      .set(failed ? { problem: JSON.stringify(outcome.problem) } : { result: JSON.stringify(outcome.result) })
      .where('id', '=', id)
      .execute();
    await this.db
      .updateTable('jobs')
      .set({ status: failed ? 'failed' : 'succeeded', finished_at: now(), ...(failed ? { error: (outcome.problem as { message?: string }).message ?? null } : {}) })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .execute();
  }

  async get(id: number) {
    return this.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Events of a job, in order, after `afterSeq` (the event stream's Last-Event-ID). */
  async appendEvents(jobId: number, events: { seq: number; event: unknown }[]): Promise<void> {
    if (!events.length) return;
    const at = now();
    await this.db
      .insertInto('job_events')
      .values(events.map((e) => ({ job_id: jobId, seq: e.seq, event: JSON.stringify(e.event), created_at: at })))
      .execute();
  }

  async events(jobId: number, afterSeq: number): Promise<{ seq: number; event: unknown }[]> {
    const rows = await this.db.selectFrom('job_events').select(['seq', 'event']).where('job_id', '=', jobId).where('seq', '>', afterSeq).orderBy('seq').execute();
    return rows.map((r) => ({ seq: r.seq, event: JSON.parse(r.event) as unknown }));
  }

  async finish(id: number, status: JobStatus, error?: string): Promise<void> {
    await this.db
      .updateTable('jobs')
      .set({ status, error: error ?? null, finished_at: now() })
      .where('id', '=', id)
      .execute();
  }

  async appendUndo(jobId: number, stepId: string, record: UndoRecord): Promise<number> {
    const row = await this.db
      .insertInto('journal')
      .values({ job_id: jobId, step_id: stepId, record: JSON.stringify(record), created_at: now(), undone_at: null })
      .returning('id')
      .executeTakeFirstOrThrow();
    return row.id;
  }

  /** Records not yet undone, newest first: the order in which they must be undone. */
  async pendingUndo(jobId: number): Promise<JournalEntry[]> {
    const rows = await this.db
      .selectFrom('journal')
      .select(['id', 'step_id', 'record'])
      .where('job_id', '=', jobId)
      .where('undone_at', 'is', null)
      .orderBy('id', 'desc')
      .execute();
    return rows.map((r) => ({ id: r.id, stepId: r.step_id, record: JSON.parse(r.record) as UndoRecord }));
  }

  async dropUndo(entryId: number): Promise<void> {
    await this.db.deleteFrom('journal').where('id', '=', entryId).execute();
  }

  async markUndone(entryId: number): Promise<void> {
    await this.db.updateTable('journal').set({ undone_at: now() }).where('id', '=', entryId).execute();
  }

  /** After success the journal's records describe resources the VM now owns; they are no longer undo work. */
  async clearJournal(jobId: number): Promise<void> {
    await this.db.deleteFrom('journal').where('job_id', '=', jobId).execute();
  }

  async recordTiming(jobId: number, t: { stepId: string; title: string; status: 'done' | 'failed' | 'skipped'; durationMs: number; startedAt: string }): Promise<void> {
    await this.db
      .insertInto('step_timings')
      .values({ job_id: jobId, step_id: t.stepId, title: t.title, status: t.status, duration_ms: t.durationMs, started_at: t.startedAt })
      .execute();
  }

  async timings(jobId: number) {
    return this.db.selectFrom('step_timings').selectAll().where('job_id', '=', jobId).orderBy('id').execute();
  }

  async lastJob(vmName: string, kind: string) {
    return this.db
      .selectFrom('jobs')
      .selectAll()
      .where('vm_name', '=', vmName)
      .where('kind', '=', kind)
      .orderBy('id', 'desc')
      .executeTakeFirst();
  }

  /**
   * Jobs whose journals need recovery: still marked running although their process is gone, or finished with
   * undo failures (retried, since their undo records stay pending).
   */
  async orphaned(isAlive: (pid: number) => boolean) {
    const rows = await this.db.selectFrom('jobs').selectAll().where('status', 'in', ['running', 'undo-failed']).execute();
    return rows.filter((r) => r.status === 'undo-failed' || (r.pid !== process.pid && !isAlive(r.pid)));
  }
}

const now = () => new Date().toISOString();
