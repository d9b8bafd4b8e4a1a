/**
 * The frame of every command that changes the host (build, destroy, recover, ...): take the host lock, undo what
 * commands that died left half-done, run, release. Under the lock, a job marked running in the journal is either
 * ours or orphaned, so recovery never undoes the work of a command that is still going.
 */
import { join } from 'node:path';
import { acquireHostLock, type HostLock, type LockHolder } from '../exec/host-lock.js';
import type { EventSink } from '../pipeline/events.js';
import type { AppContext } from './context.js';
import { recoverOrphans, type RecoveredJob } from './recover.js';

/** How long a command waits for another one to finish before it fails with LOCKED. */
export const DEFAULT_LOCK_WAIT_MS = 10 * 60_000;

export function hostLockPath(ctx: Pick<AppContext, 'config'>): string {
  return join(ctx.config.runDir, 'host.lock');
}

export interface MutatingOptions {
  emit?: EventSink;
  waitMs?: number;
  /** Told once when the lock is held by another live command and waiting starts (e.g. print "waiting for ..."). */
  onWait?: (holder: LockHolder) => void;
  signal?: AbortSignal;
  /** `vmforge recover` runs recovery itself, and reports it. */
  skipRecover?: boolean;
}

/** Runs `fn` under the host lock, after crash recovery; the lock is released however `fn` ends. */
export async function withHostLock<T>(ctx: AppContext, opts: MutatingOptions, fn: (recovered: RecoveredJob[]) => Promise<T>): Promise<T> {
  const { lock, recovered } = await lockAndRecover(ctx, opts);
  try {
    return await fn(recovered);
  } finally {
    await lock.release();
  }
}

/** For code that cannot wrap itself in withHostLock: the caller must release() in a finally. */
export async function lockAndRecover(ctx: AppContext, opts: MutatingOptions): Promise<{ lock: HostLock; recovered: RecoveredJob[] }> {
  const lock = await acquireHostLock(hostLockPath(ctx), {
    waitMs: opts.waitMs ?? DEFAULT_LOCK_WAIT_MS,
    ...(opts.onWait ? { onWait: opts.onWait } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  try {
    return { lock, recovered: opts.skipRecover ? [] : await recoverOrphans(ctx, opts.emit) };
  } catch (e) {
    await lock.release();
    throw e;
  }
}
