/**
 * Appends a received blob to its file (a pull's partial file, the repository's upload staging). Received bytes
 * are copied into a few large buffers that are reused for the whole transfer and written one batch at a time,
 * each batch hashed while its write runs. The reuse is the point: a fresh buffer per socket read costs a page
 * fault every 4 KiB, and in the paravirtualized test guest that was the largest single cost of a pull
 * (docs/performance.md).
 *
 * When the caller asks for it (`bundles.directIo: on` in the config, or VMFORGE_DIRECT_IO=1; direct-io.ts, off by
 * default, see there) and the filesystem allows it, the batches go out with O_DIRECT: a buffered write spent
 * ~3.7 system-CPU s per GiB copying into the page cache here, O_DIRECT ~0.1 s. Up to DIRECT_IN_FLIGHT such
 * writes run at once, so the socket keeps being read while the disk writes. O_DIRECT writes start at a multiple
 * of BLOCK and are whole blocks, so:
 * - a resume from an offset inside a block reads that block's first bytes back into the first buffer and
 *   writes the block again whole (the same bytes, so the file never holds anything else);
 * - the last partial block is written through the ordinary handle, once every earlier write has finished.
 * Without O_DIRECT (refused by the filesystem) every batch is written through the ordinary handle, one at a
 * time, and every SYNC_EVERY_BYTES a fdatasync starts in the background so writeback runs during the transfer
 * instead of all in the final fsync. With O_DIRECT the data is on the disk when a write returns; the caller's
 * final fsync is still needed for the file's metadata.
 *
 * Writes in flight together may finish in any order; `w.hashed` counts only the unbroken run from the start.
 * If the process dies (kill -9, power loss) while several run, the file may end with a batch whose predecessor
 * never landed (a hole of zeros): a resumed pull then fails its final sha256 check and downloads the blob once
 * more from the start (repo-client.ts), as after any other damage to a partial file.
 */
import type { Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { VmforgeError } from '../errors.js';
import { readExactly, writeAllAt } from '../exec/positioned-io.js';
import { BLOCK, openDirect, type DirectTarget } from './direct-io.js';

export interface WriteState {
  hash: Hash;
  /** Bytes at the start of the partial file that `hash` covers (and the size the file should have). */
  hashed: number;
  /** Bytes received over the network in this run. */
  fetched: number;
  /** Set when the file was started over (its earlier bytes are gone). */
  restarted?: boolean;
}

export interface AppenderOptions {
  /** Write with O_DIRECT where the filesystem takes it (the caller's directIoWanted(); default false). */
  directIo?: boolean;
}

export const BATCH_BYTES = 4 * 1024 * 1024;
/**
 * Buffered: one being filled, one being written, one waiting. O_DIRECT: one being filled, up to three written,
 * so a buffer is free for the socket while the disk works through the others.
 */
const BUFFERS = 3;
const DIRECT_BUFFERS = 4;
const DIRECT_IN_FLIGHT = 3;
export const SYNC_EVERY_BYTES = 256 * 1024 * 1024;

interface Batch {
  seq: number;
  buf: Buffer;
  /** Bytes at the start of `buf` that are already in the file (read back for an aligned rewrite), not hashed. */
  prefix: number;
  /** Bytes of `buf` in use, prefix included. */
  n: number;
  /** File offset of buf[0]. */
  pos: number;
  /** The hash before this batch: what it goes back to if the write fails. */
  before?: Hash;
  settled: boolean;
  failed: boolean;
}

export class BatchAppender {
  private readonly free: Buffer[] = [];
  private readonly pool: number;
  private cur: Buffer;
  private curPrefix = 0;
  private curPos: number;
  private fill = 0;
  private seq = 0;
  /** Data bytes taken by push so far, and the file size they follow. */
  private accepted = 0;
  private readonly startedAt: number;
  private readonly queue: Batch[] = [];
  /** Batches submitted and not yet counted in `w.hashed`, in file order. */
  private readonly inFlight: Batch[] = [];
  private running = 0;
  /** A write through the ordinary handle runs: nothing else may (it relies on the file ending where it starts). */
  private plainRunning = false;
  private firstFailed: Batch | undefined;
  private syncing: Promise<void> | undefined;
  private syncedAt: number;
  private failure: unknown;
  private waiters: (() => void)[] = [];
  private settleWaiters: (() => void)[] = [];
  private closed = false;

  /**
   * Opens the writer for `fh`, the file at `path` (opened for appending or empty, and readable when it already
   * holds a partial block), with O_DIRECT when `opts.directIo` asks for it and the filesystem takes it. `w`
   * describes the file and is kept true: `w.hashed` grows only once a batch is on disk, and the hash goes back
   * to its state before a batch whose write failed. Call finish() in any case: it also closes the O_DIRECT handle.
   */
  static async open(
    path: string,
    fh: FileHandle,
    w: WriteState,
    total: number,
    onWritten: () => void,
    opts: AppenderOptions = {},
  ): Promise<BatchAppender> {
    const direct = opts.directIo ? await openDirect(path, DIRECT_BUFFERS, BATCH_BYTES) : undefined;
    const a = new BatchAppender(fh, w, total, onWritten, direct);
    try {
      await a.readHead();
    } catch (e) {
      await a.finish().catch(() => undefined);
      throw e;
    }
    return a;
  }

  /** Buffered unless `direct` is given (open() decides; tests pass their own). */
  constructor(
    private readonly fh: FileHandle,
    private readonly w: WriteState,
    private readonly total: number,
    private readonly onWritten: () => void,
    private readonly direct?: DirectTarget,
  ) {
    if (direct) this.free.push(...direct.bufs);
    else for (let i = 0; i < BUFFERS; i++) this.free.push(Buffer.allocUnsafe(BATCH_BYTES));
    this.pool = this.free.length;
    this.cur = this.free.pop() as Buffer;
    this.syncedAt = w.hashed;
    this.startedAt = w.hashed;
    this.curPos = w.hashed;
  }

  /** Whether batches go out with O_DIRECT (false: through the page cache). */
  get directIO(): boolean {
    return this.direct !== undefined;
  }

  /** With O_DIRECT, a file ending inside a block: its bytes in that block go first into the first buffer. */
  async readHead(): Promise<void> {
    const head = this.direct ? this.w.hashed % BLOCK : 0;
    if (head === 0 || this.fill > 0) return;
    this.curPos = this.w.hashed - head;
    await readExactly(this.fh, this.cur, head, this.curPos);
    this.curPrefix = head;
    this.fill = head;
  }

  /**
   * Copies `chunk` in (the caller may reuse it as soon as this returns). False: wait for ready() before the next
   * push. Throws a write error that happened meanwhile, or when the bytes run past the blob.
   */
  push(chunk: Buffer): boolean {
    if (this.failure) throw this.failure;
    if (this.startedAt + this.accepted + chunk.length > this.total) {
      throw new VmforgeError('DIGEST_MISMATCH', `the repository sent more than the ${this.total} bytes the manifest names`);
    }
    this.accepted += chunk.length;
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
    try {
      if (this.fill > this.curPrefix) this.flushCurrent();
      while (this.running > 0 || (this.queue.length > 0 && !this.failure)) {
        await new Promise<void>((resolve) => this.settleWaiters.push(resolve));
      }
      await this.syncing;
    } finally {
      if (this.direct && !this.closed) {
        this.closed = true;
        await this.direct.fh.close().catch((e: unknown) => void (this.failure ??= e));
      }
    }
    if (this.failure) throw this.failure;
  }

  private flushCurrent(): void {
    const n = this.fill;
    this.queue.push({ seq: this.seq++, buf: this.cur, prefix: this.curPrefix, n, pos: this.curPos, settled: false, failed: false });
    this.curPos += n;
    this.curPrefix = 0;
    // Past the pool only when a caller ignored push() returning false (or pushed more than a batch at once); the
    // extra buffer keeps its bytes anyway, written through the ordinary handle (its address is not aligned).
    this.cur = this.free.pop() ?? Buffer.allocUnsafe(BATCH_BYTES);
    this.fill = 0;
    this.pump();
  }

  /** A batch goes out with O_DIRECT when it is whole blocks from a pool buffer. */
  private isDirect(b: Batch): boolean {
    return this.direct !== undefined && b.n === b.buf.length && this.direct.bufs.includes(b.buf);
  }

  private pump(): void {
    while (!this.failure && this.queue.length > 0 && !this.plainRunning) {
      const b = this.queue[0] as Batch;
      const direct = this.isDirect(b);
      // A write through the ordinary handle lands at the end of the file (O_APPEND), so nothing may run beside it.
      if (direct ? this.running >= DIRECT_IN_FLIGHT : this.running > 0) return;
      this.queue.shift();
      this.submit(b, direct);
    }
  }

  private submit(b: Batch, direct: boolean): void {
    const data = b.buf.subarray(b.prefix, b.n);
    b.before = this.w.hash.copy();
    this.running++;
    this.inFlight.push(b);
    if (!direct) this.plainRunning = true;
    const write = direct ? writeAllAt((this.direct as DirectTarget).fh, b.buf, b.pos) : this.writeEnd(b);
    // Hashing here runs on this thread while the write runs on libuv's.
    this.w.hash.update(data);
    write.then(
      () => this.settle(b, undefined),
      (e: unknown) => this.settle(b, e ?? new Error('write failed')),
    );
  }

  /**
   * A batch that is not whole aligned blocks: its whole blocks with O_DIRECT (a final batch), the rest through the
   * ordinary handle at the end of the file; without O_DIRECT, all of it through the ordinary handle.
   */
  private async writeEnd(b: Batch): Promise<void> {
    let start = b.prefix;
    if (this.direct && this.direct.bufs.includes(b.buf)) {
      const whole = b.n - (b.n % BLOCK);
      if (whole > 0) await writeAllAt(this.direct.fh, b.buf.subarray(0, whole), b.pos);
      start = Math.max(start, whole);
    }
    if (b.n > start) await writeAllAt(this.fh, b.buf.subarray(start, b.n), b.pos + start);
  }

  private settle(b: Batch, e: unknown): void {
    b.settled = true;
    this.running--;
    if (e !== undefined) {
      b.failed = true;
      this.failure ??= e;
      if (!this.firstFailed || b.seq < this.firstFailed.seq) {
        this.firstFailed = b;
        this.w.hash = b.before as Hash;
      }
    }
    if (!this.isDirect(b)) this.plainRunning = false;
    // Counted in file order: a later batch that finished first waits for the ones before it.
    let progressed = false;
    while (this.inFlight.length > 0) {
      const head = this.inFlight[0] as Batch;
      if (!head.settled || head.failed) break;
      this.inFlight.shift();
      const n = head.n - head.prefix;
      this.w.hashed += n;
      this.w.fetched += n;
      if (this.free.length < this.pool && (!this.direct || this.direct.bufs.includes(head.buf))) this.free.push(head.buf);
      progressed = true;
    }
    if (progressed) {
      if (!this.failure) this.startSync();
      this.onWritten();
    }
    this.wake();
    this.pump();
  }

  private startSync(): void {
    if (this.direct || this.syncing || this.w.hashed - this.syncedAt < SYNC_EVERY_BYTES) return;
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
    // ready() only once a buffer is free: a later batch finishing before an earlier one frees none.
    const ws = this.free.length > 0 || this.failure ? [...this.waiters, ...this.settleWaiters] : this.settleWaiters;
    if (ws !== this.settleWaiters) this.waiters = [];
    this.settleWaiters = [];
    for (const resolve of ws) resolve();
  }
}
