import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { acquireHostLock, hostLockHolder, parseStartTime, type LockHolder } from './host-lock.js';
import { VmforgeError } from '../errors.js';

let dir: string;
let lockPath: string;

beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'vmforge-lock-'));
  lockPath = path.join(dir, 'run', 'host.lock');
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

async function myStartTime(): Promise<number> {
  return parseStartTime(await fsp.readFile(`/proc/${process.pid}/stat`, 'utf8')) as number;
}

async function writeLock(h: Partial<LockHolder>): Promise<void> {
  await fsp.mkdir(path.dirname(lockPath), { recursive: true });
  await fsp.writeFile(lockPath, JSON.stringify({ nonce: 'n0', pid: process.pid, startTime: null, bootId: null, command: 'vmforge vm build old', since: '2026-01-01T00:00:00.000Z', ...h }));
}

/** A pid that is not running: a child that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const { spawnSync } = await import('node:child_process');
  return spawnSync(process.execPath, ['-e', '0']).pid as number;
}

async function lockFiles(): Promise<string[]> {
  return (await fsp.readdir(path.dirname(lockPath))).sort();
}

describe('host lock', () => {
  it('creates the lock with its holder, releases it, and leaves no temp files', async () => {
    const lock = await acquireHostLock(lockPath, { waitMs: 0, command: 'vmforge vm build web1' });
    const h = JSON.parse(await fsp.readFile(lockPath, 'utf8')) as LockHolder;
    expect(h).toMatchObject({ pid: process.pid, command: 'vmforge vm build web1', startTime: await myStartTime() });
    expect(await hostLockHolder(lockPath)).toMatchObject({ pid: process.pid });
    expect(await lockFiles()).toEqual(['host.lock']);
    await lock.release();
    await lock.release();
    expect(await lockFiles()).toEqual([]);
    expect(await hostLockHolder(lockPath)).toBeNull();
  });

  it('a held lock: LOCKED naming the holder, after waiting waitMs', async () => {
    const first = await acquireHostLock(lockPath, { waitMs: 0, command: 'vmforge vm build web1' });
    const waits: LockHolder[] = [];
    const t0 = Date.now();
    const err = await acquireHostLock(lockPath, { waitMs: 300, pollMs: 20, onWait: (h) => waits.push(h) }).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(err).toBeInstanceOf(VmforgeError);
    expect(err).toMatchObject({ code: 'LOCKED' });
    const e = err as VmforgeError;
    expect(e.message).toContain(`pid ${process.pid} (vmforge vm build web1), since ${first.holder.since}; waited 300 ms`);
    expect(e.message).toContain(lockPath);
    expect(e.hint).toMatch(/wait for it to finish/);
    expect(waits.map((w) => w.pid)).toEqual([process.pid]);
    await first.release();
  });

  it('waits for a release, then gets the lock', async () => {
    const first = await acquireHostLock(lockPath, { waitMs: 0 });
    setTimeout(() => void first.release(), 150);
    const second = await acquireHostLock(lockPath, { waitMs: 5000, pollMs: 20 });
    expect(second.holder.nonce).not.toBe(first.holder.nonce);
    await second.release();
  });

  it('release does not remove a lock that is no longer ours', async () => {
    const lock = await acquireHostLock(lockPath, { waitMs: 0 });
    await fsp.rm(lockPath);
    await writeLock({ nonce: 'someone-else' });
    await lock.release();
    expect(JSON.parse(await fsp.readFile(lockPath, 'utf8'))).toMatchObject({ nonce: 'someone-else' });
  });

  it.each([
    ['its pid is gone', async () => ({ pid: await deadPid() })],
    ['its pid was reused (other start time)', async () => ({ pid: process.pid, startTime: (await myStartTime()) - 1 })],
    ['it was taken before a reboot', async () => ({ pid: process.pid, bootId: '00000000-0000-0000-0000-000000000000' })],
  ])('takes over a stale lock: %s', async (_t, holder) => {
    await writeLock(await holder());
    expect(await hostLockHolder(lockPath)).toBeNull();
    const lock = await acquireHostLock(lockPath, { waitMs: 0 });
    expect(JSON.parse(await fsp.readFile(lockPath, 'utf8'))).toMatchObject({ nonce: lock.holder.nonce });
    expect(await lockFiles()).toEqual(['host.lock']);
    await lock.release();
  });

  it('takes over a corrupt lock, and clears claims and temp files of dead takers', async () => {
    await writeLock({});
    await fsp.writeFile(lockPath, 'garbage');
    const dead = await deadPid();
    await fsp.writeFile(`${lockPath}.tmp-${dead}-abcdef`, '{}');
    await fsp.writeFile(`${lockPath}.stale-n9`, JSON.stringify({ nonce: 'c1', pid: dead, startTime: null, bootId: null, command: 'x', since: 'y' }));
    const lock = await acquireHostLock(lockPath, { waitMs: 0 });
    expect(await lockFiles()).toEqual(['host.lock']);
    await lock.release();
  });

  it('a live holder in this process (same pid and start time) is not stale', async () => {
    await writeLock({ startTime: await myStartTime() });
    await expect(acquireHostLock(lockPath, { waitMs: 0 })).rejects.toMatchObject({ code: 'LOCKED' });
  });

  it('stops waiting when aborted', async () => {
    await writeLock({ startTime: await myStartTime() });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await expect(acquireHostLock(lockPath, { waitMs: 60_000, signal: ac.signal })).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('parses the start time after a command name with spaces and parentheses', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    expect(parseStartTime(`123 (a) b (c)) ${fields.join(' ')}`)).toBe(22);
  });
});
