/**
 * Appends a downloaded blob to its partial file. Received bytes are copied into a few large buffers that are
 * reused for the whole download and written one batch at a time, each batch hashed while its write runs. The
 * reuse is the point: a fresh buffer per socket read costs a page fault every 4 KiB, and in the paravirtualized
 * test guest that was the largest single cost of a pull (docs/performance.md). Every SYNC_EVERY_BYTES a
 * fdatasync starts in the background, so writeback runs during the transfer instead of all in the final fsync.
 */
import type { Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { VmforgeError } from '../errors.js';
import { writevAll } from './write-all.js';

export interface WriteState {
  hash: Hash;
  /** Bytes at the start of the partial file that `hash` covers (and the size the file should have). */
  hashed: number;
  /** Bytes received over the network in this run. */
  fetched: number;
  /** Set when the file was started over (its earlier bytes are gone). */
  restarted?: boolean;
}

const BATCH_BYTES = 4 * 1024 * 1024;
/** One being filled, one being written, one waiting: the socket keeps being read while the disk writes. */
const BUFFERS = 3;
export const SYNC_EVERY_BYTES = 256 * 1024 * 1024;

export class BatchAppender {
  private readonly free: Buffer[] = [];
  private cur: Buffer;
  private fill = 0;
  private readonly queue: { buf: Buffer; n: number }[] = [];
  private queued = 0;
  private writing: Promise<void> | undefined;
  private syncing: Promise<void> | undefined;
  private syncedAt: number;
  private failure: unknown;
  private waiters: (() => void)[] = [];

  /**
   * `w` describes the file (opened for appending) and is kept true at every moment: `w.hashed` grows only once
   * a batch is on disk, and the hash goes back to its state before a batch whose write failed.
   */
  constructor(
    private readonly fh: FileHandle,
    private readonly w: WriteState,
    private readonly total: number,
    private readonly onWritten: () => void,
  ) {
    for (let i = 0; i < BUFFERS; i++) this.free.push(Buffer.allocUnsafe(BATCH_BYTES));
    this.cur = this.free.pop() as Buffer;
    this.syncedAt = w.hashed;
  }

  /**
   * Copies `chunk` in (the caller may reuse it as soon as this returns). False: wait for ready() before the next
   * push. Throws a write error that happened meanwhile, or when the bytes run past the blob.
   */
  push(chunk: Buffer): boolean {
    if (this.failure) throw this.failure;
    if (this.w.hashed + this.pendingBytes() + chunk.length > this.total) {
      throw new VmforgeError('DIGEST_MISMATCH', `the repository sent more than the ${this.total} bytes the manifest names`);
    }
    for (let off = 0; off < chunk.length; ) {
      const n = chunk.copy(this.cur, this.fill, off);
      this.fill += n;
      off += n;
      if (this.fill === this.cur.length) this.flushCurrent();
    }
    return this.free.length > 0;
  }

  /** Resolves once push may be called again (a batch was written, or a write failed: push then throws). */
  ready(): Promise<void> {
    if (this.free.length > 0 || this.failure) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Writes everything received so far and waits for it; throws the first write or sync error. */
  async finish(): Promise<void> {
    if (this.fill > 0) this.flushCurrent();
    while (this.writing) await this.writing;
    await this.syncing;
    if (this.failure) throw this.failure;
  }

  private pendingBytes(): number {
    return this.queued + this.fill;
  }

  private flushCurrent(): void {
    this.queue.push({ buf: this.cur, n: this.fill });
    this.queued += this.fill;
    // Past the pool only when a caller ignored push() returning false; the fallback keeps its bytes anyway.
    this.cur = this.free.pop() ?? Buffer.allocUnsafe(BATCH_BYTES);
    this.fill = 0;
    this.pump();
  }

  private pump(): void {
    if (this.writing || this.failure) return;
    const batch = this.queue.shift();
    if (!batch) return;
    this.queued -= batch.n;
    const data = batch.buf.subarray(0, batch.n);
    const before = this.w.hash.copy();
    const write = writevAll(this.fh, [data]);
    // Hashing here runs on this thread while the write runs on libuv's.
    this.w.hash.update(data);
    this.writing = write.then(
      () => {
        this.w.hashed += batch.n;
        this.w.fetched += batch.n;
        this.writing = undefined;
        if (this.free.length < BUFFERS) this.free.push(batch.buf);
        this.startSync();
        this.onWritten();
        this.wake();
        this.pump();
      },
      (e: unknown) => {
        this.w.hash = before;
        this.failure ??= e;
        this.writing = undefined;
        this.wake();
      },
    );
  }

  private startSync(): void {
    if (this.syncing || this.w.hashed - this.syncedAt < SYNC_EVERY_BYTES) return;
    this.syncedAt = this.w.hashed;
    this.syncing = this.fh.datasync().then(
      () => {
        this.syncing = undefined;
      },
      (e: unknown) => {
        this.failure ??= e;
        this.syncing = undefined;
      },
    );
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const resolve of ws) resolve();
  }
}
