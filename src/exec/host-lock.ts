/**
 * The host lock: one mutating vmforge command at a time per state dir, so two builds never race for a name, a
 * loop device or the crash-recovery journal.
 *
 * Design (no flock() in Node):
 * - The lock is a file whose content names its holder: a random nonce, pid, the pid's start time (field 22 of
 *   /proc/PID/stat), the boot id, the command line and when it was taken. It is written to a private temp file
 *   first and then link()ed to the lock path: link() fails with EEXIST if the lock exists, and a reader never
 *   sees a half-written lock.
 * - A lock is stale when its holder is gone: another boot, no such pid, or a pid whose start time differs (the
 *   pid was reused). Stale locks are taken over without waiting.
 * - Taking over: the taker first creates a claim `<lock>.stale-<nonce>` for that one stale holder (link(),
 *   so only one taker can hold it), re-reads the lock, and only if it still carries the same nonce unlinks it.
 *   A holder's nonce appears in the lock path once and never again, so while one taker holds the claim nobody
 *   else can remove or replace that lock; a slower taker that claims after the stale lock is gone sees another
 *   nonce (or none) and backs off. Then every taker races for the fresh lock with link() as usual.
 * - Waiting: polls (with jitter) until `waitMs` has passed, then fails with LOCKED naming the holder.
 */
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { VmforgeError } from '../errors.js';
import { pidAlive } from './pid.js';

export interface LockHolder {
  nonce: string;
  pid: number;
  /** /proc/PID/stat starttime (clock ticks after boot); null where /proc was not readable. */
  startTime: number | null;
  bootId: string | null;
  command: string;
  /** ISO time the lock was taken. */
  since: string;
}

export interface AcquireHostLockOptions {
  /** How long to wait for a live holder before failing with LOCKED. 0: fail at once. */
  waitMs: number;
  /** Called once, when the lock is found held by a live process and waiting starts. */
  onWait?: (holder: LockHolder) => void;
  /** Stored in the lock for the error message of whoever waits; default: this process's argv. */
  command?: string;
  /** Poll interval (ms); jittered by up to half of it. Default 100. */
  pollMs?: number;
  signal?: AbortSignal;
}

export interface HostLock {
  readonly path: string;
  readonly holder: LockHolder;
  /** Removes the lock if it is still ours; idempotent. */
  release(): Promise<void>;
}

const DEFAULT_POLL_MS = 100;
const MAX_COMMAND_CHARS = 200;
/** Claims on claims: each level needs its taker to die inside a few system calls, so 4 is plenty. */
const MAX_CLAIM_DEPTH = 4;

export async function acquireHostLock(lockPath: string, opts: AcquireHostLockOptions): Promise<HostLock> {
  await fsp.mkdir(path.dirname(lockPath), { recursive: true, mode: 0o755 });
  const me: LockHolder = {
    nonce: randomBytes(12).toString('hex'),
    pid: process.pid,
    startTime: await processStartTime(process.pid),
    bootId: await bootId(),
    command: (opts.command ?? commandLine()).slice(0, MAX_COMMAND_CHARS),
    since: new Date().toISOString(),
  };
  const deadline = Date.now() + opts.waitMs;
  const poll = opts.pollMs ?? DEFAULT_POLL_MS;
  let announced = false;
  await sweepLeftovers(lockPath, me);
  for (;;) {
    if (opts.signal?.aborted) throw new VmforgeError('CANCELLED', `stopped waiting for the host lock ${lockPath}`);
    if (await tryCreate(lockPath, me)) return lockHandle(lockPath, me);
    const { holder, ino } = await readHolderAt(lockPath);
    if (holder === 'missing') continue; // released between our link() and our read: try again at once
    const stale = holder === 'corrupt' || (await isStale(holder, me.bootId));
    // false: a live taker holds the claim and is about to remove it; give it a moment like a live holder.
    if (stale && (await removeIfStale(lockPath, holder === 'corrupt' ? null : holder, ino, me))) continue;
    const shown: LockHolder = holder === 'corrupt' ? { nonce: '', pid: 0, startTime: null, bootId: null, command: '(unreadable lock)', since: '?' } : holder;
    if (Date.now() >= deadline) throw lockedError(lockPath, shown, opts.waitMs);
    if (!announced && !stale) {
      announced = true;
      opts.onWait?.(shown);
    }
    await sleep(Math.min(poll + Math.floor(Math.random() * (poll / 2)), Math.max(deadline - Date.now(), 1)), opts.signal);
  }
}

/** Who holds the lock now; null when nobody (or only a stale holder) does. For `vmforge status`-like output. */
export async function hostLockHolder(lockPath: string): Promise<LockHolder | null> {
  const h = await readHolder(lockPath);
  if (h === 'missing' || h === 'corrupt') return null;
  return (await isStale(h, await bootId())) ? null : h;
}

function lockHandle(lockPath: string, me: LockHolder): HostLock {
  let released = false;
  return {
    path: lockPath,
    holder: me,
    async release() {
      if (released) return;
      released = true;
      const h = await readHolder(lockPath);
      // Someone judged us stale and took over (we were stopped long enough to look dead?): theirs now.
      if (typeof h === 'object' && h.nonce === me.nonce) await unlinkIfExists(lockPath);
    },
  };
}

/** link() a fully written temp file to the lock path: atomic create-if-absent with the content in place. */
async function tryCreate(lockPath: string, me: LockHolder): Promise<boolean> {
  const tmp = `${lockPath}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  await fsp.writeFile(tmp, `${JSON.stringify(me)}\n`, { mode: 0o644, flag: 'wx' });
  try {
    await fsp.link(tmp, lockPath);
    return true;
  } catch (e) {
    if (errno(e) === 'EEXIST') return false;
    throw e;
  } finally {
    await unlinkIfExists(tmp);
  }
}

/**
 * Removes `file` if it still carries the stale holder `stale` (null: the corrupt content seen at inode `ino`).
 * Returns false when a live taker holds the claim (the caller waits a moment), true when it is worth trying to
 * create the lock again at once.
 * The right to remove it is itself a lock, the claim `<file>.stale-<nonce>`, taken with tryCreate; a claim whose
 * taker died is removed the same way, one level down, so no crash leaves the lock stuck and no two takers ever
 * both remove a lock: the one without the claim backs off, and a lock never carries a removed nonce again.
 */
async function removeIfStale(file: string, stale: LockHolder | null, ino: number, me: LockHolder, depth = 0): Promise<boolean> {
  if (depth > MAX_CLAIM_DEPTH) return false;
  const claim = `${file}.stale-${stale ? safeName(stale.nonce) : `corrupt-${ino}`}`;
  if (await tryCreate(claim, me)) {
    try {
      const now = await readHolderAt(file);
      const same = stale === null ? now.holder === 'corrupt' && now.ino === ino : typeof now.holder === 'object' && now.holder.nonce === stale.nonce;
      if (same) await unlinkIfExists(file);
    } finally {
      await unlinkIfExists(claim);
    }
    return true;
  }
  const c = await readHolderAt(claim);
  if (c.holder === 'missing') return true;
  if (c.holder === 'corrupt') return removeIfStale(claim, null, c.ino, me, depth + 1);
  if (await isStale(c.holder, me.bootId)) return removeIfStale(claim, c.holder, c.ino, me, depth + 1);
  // A live taker has the claim and is about to remove the lock.
  return false;
}

async function readHolder(lockPath: string): Promise<LockHolder | 'missing' | 'corrupt'> {
  return (await readHolderAt(lockPath)).holder;
}

/** The holder and the inode it was read from (to tell one corrupt lock from the next). */
async function readHolderAt(lockPath: string): Promise<{ holder: LockHolder | 'missing' | 'corrupt'; ino: number }> {
  let text: string;
  let ino: number;
  try {
    const fh = await fsp.open(lockPath, 'r');
    try {
      ino = (await fh.stat()).ino;
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (e) {
    if (errno(e) === 'ENOENT') return { holder: 'missing', ino: 0 };
    throw e;
  }
  return { holder: parseHolder(text), ino };
}

function parseHolder(text: string): LockHolder | 'corrupt' {
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    if (typeof h.nonce !== 'string' || typeof h.pid !== 'number' || !Number.isInteger(h.pid) || h.pid <= 0) return 'corrupt';
    return {
      nonce: h.nonce,
      pid: h.pid,
      startTime: typeof h.startTime === 'number' ? h.startTime : null,
      bootId: typeof h.bootId === 'string' ? h.bootId : null,
      command: typeof h.command === 'string' ? h.command : '?',
      since: typeof h.since === 'string' ? h.since : '?',
    };
  } catch {
    // Written whole by link(), so unparsable content is damage (or not ours), never a lock being written.
    return 'corrupt';
  }
}

export async function isStale(h: LockHolder, myBootId: string | null): Promise<boolean> {
  if (h.bootId !== null && myBootId !== null && h.bootId !== myBootId) return true;
  if (!pidAlive(h.pid)) return true;
  if (h.startTime === null) return false;
  const now = await processStartTime(h.pid);
  // null: the process exited between the two checks.
  return now === null || now !== h.startTime;
}

/** Field 22 of /proc/PID/stat; the command name (field 2) may hold spaces and ')' so parse after the last ')'. */
export function parseStartTime(stat: string): number | null {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const v = Number(rest[19]);
  return Number.isSafeInteger(v) ? v : null;
}

async function processStartTime(pid: number): Promise<number | null> {
  try {
    return parseStartTime(await fsp.readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

async function bootId(): Promise<string | null> {
  try {
    return (await fsp.readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  } catch {
    return null;
  }
}

/** Temp files and claims of processes that died between creating and removing them. */
async function sweepLeftovers(lockPath: string, me: LockHolder): Promise<void> {
  const dir = path.dirname(lockPath);
  const base = path.basename(lockPath);
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith(`${base}.`)) continue;
    const pid = Number(/\.tmp-(\d+)-[0-9a-f]+$/.exec(name)?.[1]);
    if (pid && pid !== process.pid && !pidAlive(pid)) {
      await unlinkIfExists(path.join(dir, name));
    } else if (!pid && /\.stale-[A-Za-z0-9_-]+$/.test(name)) {
      const claim = path.join(dir, name);
      const c = await readHolderAt(claim);
      if (c.holder === 'corrupt' || (typeof c.holder === 'object' && (await isStale(c.holder, me.bootId)))) {
        await removeIfStale(claim, c.holder === 'corrupt' ? null : c.holder, c.ino, me);
      }
    }
  }
}

function lockedError(lockPath: string, h: LockHolder, waitedMs: number): VmforgeError {
  const waited = waitedMs > 0 ? `; waited ${formatWait(waitedMs)}` : '';
  return new VmforgeError(
    'LOCKED',
    `another vmforge command holds the host lock ${lockPath}: pid ${h.pid} (${h.command}), since ${h.since}${waited}`,
    {
      hint: `wait for it to finish and try again; if pid ${h.pid} hangs, stop it (kill ${h.pid}), and the next command takes the lock over and undoes what it left half-done`,
    },
  );
}

function formatWait(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}

function commandLine(): string {
  const args = process.argv.slice(2).map((a) => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(a) ? a : JSON.stringify(a)));
  return ['vmforge', ...args].join(' ');
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
}

async function unlinkIfExists(p: string): Promise<void> {
  try {
    await fsp.unlink(p);
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw e;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}
