/**
 * The operations log: one JSON record per pipeline event, in <stateDir>/log/vmforge.log, so what a build or
 * destroy did (and how long each step took) can be read after the fact. Secrets never reach it: events carry
 * step ids, titles, timings and error messages only, and keys named like secrets are censored anyway.
 *
 * Records are pino's format (`{"level":30,"time":<epoch ms>,"pid":...,"job":...,"vm":...,...,"msg":...}`), so
 * pino tooling still reads them, but written by this small synchronous writer: pino's module graph cost every
 * command ~40 ms of start-up for what is one `writeSync` per event.
 */
import { mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { EventSink, PipelineEvent } from '../pipeline/events.js';

/** pino's numeric levels, so `level >= 50` still finds the errors. */
const LEVELS = { info: 30, warn: 40, error: 50 } as const;
export type LogLevel = keyof typeof LEVELS;

export interface JsonLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  /** A log whose records also carry `bindings` (after pid, before the record's own fields). */
  child(bindings: object): JsonLog;
}

/** Keys whose values never reach the operations log, at any depth below the record's own fields. */
export const REDACTED_KEYS: readonly string[] = ['password', 'passwordHash', 'token', 'secret', 'key'];
const CENSOR = '[redacted]';

/**
 * One record as a JSON line. Keys in `redact` are censored in nested objects (pino's `*.password` paths); the
 * record's own top-level fields are not, so the repository server can log a token's configured *name* as `token`.
 */
export function formatRecord(
  level: LogLevel,
  time: number,
  bindings: object,
  obj: object,
  msg: string,
  redact: ReadonlySet<string>,
): string {
  const record: Record<string, unknown> = { level: LEVELS[level], time, ...bindings, ...obj, msg };
  return `${JSON.stringify(record, function (this: unknown, key: string, value: unknown) {
    if (this !== record && redact.has(key)) return CENSOR;
    if (typeof value === 'bigint') return value.toString();
    if (value instanceof Error) return { type: value.name, message: value.message, stack: value.stack };
    return value;
  })}\n`;
}

/** A JSON-lines log writing each record synchronously through `write` (it is complete when the call returns). */
export function jsonLinesLog(write: (line: string) => void, opts: { bindings?: object; redact?: readonly string[] } = {}): JsonLog {
  const redact = new Set(opts.redact ?? []);
  const make = (bindings: object): JsonLog => {
    const at = (level: LogLevel) => (obj: object, msg: string) => write(formatRecord(level, Date.now(), bindings, obj, msg, redact));
    return { info: at('info'), warn: at('warn'), error: at('error'), child: (more) => make({ ...bindings, ...more }) };
  };
  return make({ pid: process.pid, ...opts.bindings });
}

export function openLog(stateDir: string): JsonLog {
  const dir = join(stateDir, 'log');
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  // O_APPEND: records of concurrent vmforge processes interleave whole, never inside a line.
  const fd = openSync(join(dir, 'vmforge.log'), 'a');
  return jsonLinesLog((line) => writeAll(fd, line), { redact: REDACTED_KEYS });
}

function writeAll(fd: number, text: string): void {
  let buf = Buffer.from(text);
  while (buf.length > 0) buf = buf.subarray(writeSync(fd, buf));
}

/** Wraps an event sink so every event is also logged, under a child logger for the job. */
export function loggedSink(log: JsonLog, job: { kind: string; vm: string }, sink: EventSink): EventSink {
  const child = log.child({ job: job.kind, vm: job.vm });
  return (e: PipelineEvent) => {
    const level = e.type === 'step.failed' || e.type === 'pipeline.failed' || e.type === 'undo.failed' ? 'error' : 'info';
    child[level]({ ...e }, e.type);
    sink(e);
  };
}
