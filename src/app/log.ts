/**
 * The operations log: one JSON record per pipeline event, in <stateDir>/log/vmforge.log, so what a build or
 * destroy did (and how long each step took) can be read after the fact. Secrets never reach it: events carry
 * step ids, titles, timings and error messages only.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type pinoModule from 'pino';
import type { Logger } from 'pino';
import type { EventSink, PipelineEvent } from '../pipeline/events.js';

export function openLog(stateDir: string): Logger {
  const dir = join(stateDir, 'log');
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  // Required on first use (pino is CommonJS, and openLog is synchronous): read-only commands never log, and
  // pino's module graph would otherwise be loaded by every command that opens the app context.
  const pino = createRequire(import.meta.url)('pino') as typeof pinoModule;
  return pino(
    { base: { pid: process.pid }, redact: { paths: ['*.password', '*.passwordHash', '*.token', '*.secret', '*.key'], censor: '[redacted]' } },
    pino.destination({ dest: join(dir, 'vmforge.log'), sync: true, mkdir: true }),
  );
}

/** Wraps an event sink so every event is also logged, under a child logger for the job. */
export function loggedSink(log: Logger, job: { kind: string; vm: string }, sink: EventSink): EventSink {
  const child = log.child({ job: job.kind, vm: job.vm });
  return (e: PipelineEvent) => {
    const level = e.type === 'step.failed' || e.type === 'pipeline.failed' || e.type === 'undo.failed' ? 'error' : 'info';
    child[level]({ ...e }, e.type);
    sink(e);
  };
}
