/**
 * The host lock across real processes: a contender waits for the holder and then gets the lock; a SIGKILLed
 * holder's lock is taken over; ten processes racing for a stale lock (and then for each other's) hold it one at
 * a time: each records enter/exit times (CLOCK_MONOTONIC, the same in every process) and no two intervals overlap.
 */
import { execa, type ResultPromise } from 'execa';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../harness/env.js';

let dir: string;
type Contender = ResultPromise<{ cwd: string; reject: false }>;
const started: Contender[] = [];

beforeAll(async () => {
  dir = await mkdtemp('/var/tmp/vmf-h7-lock-');
});
afterAll(async () => {
  for (const c of started) if (c.exitCode === null) c.kill('SIGKILL');
  await Promise.allSettled(started);
  await rm(dir, { recursive: true, force: true });
});

function contender(lock: string, record: string, holdMs: number, waitMs: number, goFile?: string): Contender {
  const c = execa(process.execPath, ['--import', 'tsx', join(REPO, 'test/harness/lock-contender.ts'), lock, record, String(holdMs), String(waitMs), ...(goFile ? [goFile] : [])], {
    cwd: REPO,
    reject: false,
  });
  started.push(c);
  return c;
}

interface Interval {
  pid: number;
  enter: bigint;
  exit: bigint;
}

async function intervals(record: string): Promise<Interval[]> {
  const byPid = new Map<number, Partial<Interval>>();
  for (const line of (await readFile(record, 'utf8')).trim().split('\n')) {
    const [what, t, pid] = line.split(' ');
    const e = byPid.get(Number(pid)) ?? { pid: Number(pid) };
    e[what as 'enter' | 'exit'] = BigInt(t as string);
    byPid.set(Number(pid), e);
  }
  return [...byPid.values()].map((e) => e as Interval).sort((a, b) => (a.enter < b.enter ? -1 : 1));
}

function overlaps(list: Interval[]): string[] {
  const bad: string[] = [];
  for (let i = 1; i < list.length; i++) {
    const prev = list[i - 1] as Interval;
    const cur = list[i] as Interval;
    if (cur.enter < prev.exit) bad.push(`${cur.pid} entered ${cur.enter} before ${prev.pid} left ${prev.exit}`);
  }
  return bad;
}

function untilStdout(c: Contender, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    c.stdout?.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes(text)) resolve();
    });
    void c.then((r) => reject(new Error(`exited before '${text}': ${String(r.stderr)}`)));
  });
}

/** A lock file whose holder has exited: the pid of a process that ran and was reaped. */
async function staleLock(lock: string): Promise<number> {
  const pid = spawnSync(process.execPath, ['-e', '0']).pid;
  await writeFile(lock, JSON.stringify({ nonce: 'stale0', pid, startTime: 1, bootId: null, command: 'vmforge vm build dead', since: '2026-01-01T00:00:00Z' }));
  return pid;
}

describe('host lock between processes', () => {
  it('a second process waits for the first, then gets the lock', async () => {
    const lock = join(dir, 'two.lock');
    const record = join(dir, 'two.rec');
    const a = contender(lock, record, -1, 0);
    await untilStdout(a, 'locked');
    const b = contender(lock, record, 10, 60_000);
    await untilStdout(b, `waiting for ${a.pid}`);
    // A contender with no patience fails at once, naming the holder.
    const c = await contender(lock, record, 10, 0);
    expect(c.exitCode).toBe(3);
    expect(c.stderr).toMatch(new RegExp(`^LOCKED: another vmforge command holds the host lock ${lock}: pid ${a.pid} \\(lock-contender ${a.pid}\\), since \\S+Z`));
    a.kill('SIGTERM');
    const rb = await b;
    expect(rb.exitCode, rb.stderr).toBe(0);
    expect((await intervals(record)).map((i) => i.pid)).toEqual([a.pid, b.pid]);
    expect(await readdir(dir)).not.toContain('two.lock');
  });

  it("a SIGKILLed holder's lock is taken over", async () => {
    const lock = join(dir, 'killed.lock');
    const record = join(dir, 'killed.rec');
    const a = contender(lock, record, -1, 0);
    await untilStdout(a, 'locked');
    const b = contender(lock, record, 10, 60_000);
    await untilStdout(b, `waiting for ${a.pid}`);
    a.kill('SIGKILL');
    await a;
    const rb = await b;
    expect(rb.exitCode, rb.stderr).toBe(0);
    expect((await readdir(dir)).filter((f) => f.startsWith('killed.lock'))).toEqual([]);
  });

  it('a stale lock is taken over without waiting', async () => {
    const lock = join(dir, 'stale.lock');
    await staleLock(lock);
    const r = await contender(lock, join(dir, 'stale.rec'), 10, 0);
    expect(r.exitCode, r.stderr).toBe(0);
  });

  it('10 processes racing for a stale lock hold it one at a time', async () => {
    const lock = join(dir, 'race.lock');
    const record = join(dir, 'race.rec');
    await staleLock(lock);
    // Every contender starts racing at the same moment, once tsx has loaded in all of them.
    const go = join(dir, 'race.go');
    const all = Array.from({ length: 10 }, () => contender(lock, record, 30, 120_000, go));
    await Promise.all(all.map((c) => untilStdout(c, 'ready')));
    await writeFile(go, '');
    const results = await Promise.all(all);
    for (const r of results) expect(r.exitCode, r.stderr).toBe(0);
    const list = await intervals(record);
    expect(list).toHaveLength(10);
    expect(list.every((i) => i.exit > i.enter)).toBe(true);
    expect(overlaps(list)).toEqual([]);
    expect((await readdir(dir)).filter((f) => f.startsWith('race.lock'))).toEqual([]);
    // They did race: all ten were waiting on the same stale lock when the first got in.
    expect(results.filter((r) => String(r.stdout).includes('waiting for')).length).toBeGreaterThan(0);
  });
});
