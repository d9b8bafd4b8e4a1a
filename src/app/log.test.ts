import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PipelineEvent } from '../pipeline/events.js';
import { formatRecord, jsonLinesLog, loggedSink, openLog, REDACTED_KEYS } from './log.js';

const REDACT = new Set(REDACTED_KEYS);

describe('operations log', () => {
  it('writes pino-format records: level, time, pid, bindings, fields, msg, in that order', () => {
    const line = formatRecord('error', 1700000000000, { pid: 42, job: 'build', vm: 'web1' }, { type: 'step.failed', step: 'disk' }, 'step.failed', REDACT);
    expect(line).toBe('{"level":50,"time":1700000000000,"pid":42,"job":"build","vm":"web1","type":"step.failed","step":"disk","msg":"step.failed"}\n');
  });

  it('censors secret-named keys below the top level, at any depth, and keeps top-level ones (a token name)', () => {
    const obj = { token: 'ci-uploader', dns: { key: 'tsig-secret', nested: { secret: 's', password: 'p', passwordHash: 'h', other: 1 } }, list: [{ token: 't' }] };
    const rec = JSON.parse(formatRecord('info', 0, {}, obj, 'm', REDACT)) as Record<string, unknown>;
    expect(rec.token).toBe('ci-uploader');
    expect(rec.dns).toEqual({ key: '[redacted]', nested: { secret: '[redacted]', password: '[redacted]', passwordHash: '[redacted]', other: 1 } });
    expect(rec.list).toEqual([{ token: '[redacted]' }]);
  });

  it('writes errors as type, message and stack, and BigInts as strings', () => {
    const rec = JSON.parse(formatRecord('error', 0, {}, { err: new TypeError('boom'), bytes: 2n ** 64n }, 'm', REDACT)) as { err: Record<string, string>; bytes: string };
    expect(rec.err.type).toBe('TypeError');
    expect(rec.err.message).toBe('boom');
    expect(rec.err.stack).toContain('boom');
    expect(rec.bytes).toBe('18446744073709551616');
  });

  it('child logs add their bindings after pid; each record is written whole, synchronously', () => {
    const lines: string[] = [];
    const log = jsonLinesLog((l) => lines.push(l));
    log.child({ job: 'destroy' }).child({ vm: 'db1' }).warn({ what: 'x' }, 'undo.start');
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0] as string) as Record<string, unknown>;
    expect(Object.keys(rec)).toEqual(['level', 'time', 'pid', 'job', 'vm', 'what', 'msg']);
    expect(rec).toMatchObject({ level: 40, pid: process.pid, job: 'destroy', vm: 'db1', msg: 'undo.start' });
  });

  it('openLog appends one line per pipeline event to <stateDir>/log/vmforge.log', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmforge-log-test-'));
    try {
      const seen: PipelineEvent[] = [];
      const sink = loggedSink(openLog(dir), { kind: 'build', vm: 'web1' }, (e) => seen.push(e));
      sink({ type: 'step.start', step: 'disk', title: 'make the disk', index: 0, total: 2 });
      sink({ type: 'pipeline.failed', durationMs: 5, error: 'no space', undone: 1, undoFailures: 0 });
      const again = loggedSink(openLog(dir), { kind: 'destroy', vm: 'web1' }, () => {});
      again({ type: 'pipeline.done', durationMs: 1 });
      expect(seen).toHaveLength(2);
      const recs = (await readFile(join(dir, 'log/vmforge.log'), 'utf8'))
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(recs.map((r) => [r.level, r.job, r.vm, r.msg])).toEqual([
        [30, 'build', 'web1', 'step.start'],
        [50, 'build', 'web1', 'pipeline.failed'],
        [30, 'destroy', 'web1', 'pipeline.done'],
      ]);
      expect(recs[1]).toMatchObject({ type: 'pipeline.failed', error: 'no space', undone: 1 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
