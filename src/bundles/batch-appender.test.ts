/**
 * The blob appender on real files in the temp directory, with O_DIRECT asked for (ext4 on the test host takes
 * it; the tests check the buffered fallback wherever it does not). Content and hash are checked byte for byte; failures are injected by wrapping
 * the file handles.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BATCH_BYTES, BatchAppender, type WriteState } from './batch-appender.js';
import { DIRECT_IO_ENV, openDirect } from './direct-io.js';
import { patternBytes as bytes, sha256Hex as sha } from '../../test/harness/pattern-bytes.js';

const MiB = 1024 * 1024;
let dir: string;
let seq = 0;
let directHere = false;
/** What the callers pass when bundles.directIo (or VMFORGE_DIRECT_IO) asks for O_DIRECT. */
const DIRECT = { directIo: true };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmforge-appender-'));
  await writeFile(join(dir, 'probe'), '');
  const probe = await openDirect(join(dir, 'probe'), 1, BATCH_BYTES);
  if (probe) {
    directHere = true;
    await probe.fh.close();
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A file holding `head` (as a pull's partial file: opened a+), and the state that describes it. */
async function partialFile(head: Buffer): Promise<{ path: string; fh: FileHandle; w: WriteState }> {
  const path = join(dir, `f${seq++}.partial`);
  await writeFile(path, head);
  const fh = await open(path, 'a+');
  return { path, fh, w: { hash: createHash('sha256').update(head), hashed: head.length, fetched: 0 } };
}

/** Pushes `data` in chunks of varying size, waiting whenever push asks to. */
async function pushAll(a: BatchAppender, data: Buffer): Promise<void> {
  const sizes = [65536, 1, 4095, 1048576, 4097, 300000];
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length] as number, data.length - off);
    if (!a.push(data.subarray(off, off + n))) await a.ready();
    off += n;
  }
}

/** `fh` with its k-th write (counting from 1) failing, after `delayMs`. */
function failingWrite(fh: FileHandle, k: number, delayMs = 0): FileHandle {
  let count = 0;
  return new Proxy(fh, {
    get(target, prop) {
      if (prop === 'write') {
        return async (...args: unknown[]) => {
          if (++count === k) {
            await sleep(delayMs);
            throw Object.assign(new Error('injected write failure'), { code: 'EIO' });
          }
          return (target.write as (...a: unknown[]) => Promise<unknown>)(...args);
        };
      }
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** After a failure: the file's first `w.hashed` bytes are the data's, and the hash covers exactly them. */
async function expectConsistent(path: string, w: WriteState, all: Buffer): Promise<void> {
  const onDisk = await readFile(path);
  expect(onDisk.length).toBeGreaterThanOrEqual(w.hashed);
  expect(onDisk.subarray(0, w.hashed).equals(all.subarray(0, w.hashed))).toBe(true);
  expect(w.hash.digest('hex')).toBe(sha(all.subarray(0, w.hashed)));
}

describe('BatchAppender', () => {
  const sizes = [0, 1, 4095, 4096, 4097, 4 * MiB - 1, 4 * MiB, 4 * MiB + 1, 13 * MiB + 5];
  it.each(sizes)('writes %i bytes byte-exact, with their sha256', async (size) => {
    const data = bytes(size, size);
    const { path, fh, w } = await partialFile(Buffer.alloc(0));
    try {
      const a = await BatchAppender.open(path, fh, w, size, () => undefined, DIRECT);
      expect(a.directIO).toBe(directHere);
      await pushAll(a, data);
      await a.finish();
    } finally {
      await fh.close();
    }
    expect(w.hashed).toBe(size);
    expect(w.fetched).toBe(size);
    expect(w.hash.digest('hex')).toBe(sha(data));
    expect((await readFile(path)).equals(data)).toBe(true);
  });

  it.each([1, 4095, 4097, 5000, 4 * MiB + 3])('resumes a file that holds %i bytes', async (have) => {
    const all = bytes(9 * MiB + 77, have);
    const { path, fh, w } = await partialFile(all.subarray(0, have));
    try {
      const a = await BatchAppender.open(path, fh, w, all.length, () => undefined, DIRECT);
      await pushAll(a, all.subarray(have));
      await a.finish();
    } finally {
      await fh.close();
    }
    expect(w.hashed).toBe(all.length);
    expect(w.fetched).toBe(all.length - have);
    expect(w.hash.digest('hex')).toBe(sha(all));
    expect((await readFile(path)).equals(all)).toBe(true);
  });

  it('resumes from an odd offset with fewer new bytes than fill the block', async () => {
    const all = bytes(5000 + 10);
    const { path, fh, w } = await partialFile(all.subarray(0, 5000));
    try {
      const a = await BatchAppender.open(path, fh, w, all.length, () => undefined, DIRECT);
      a.push(all.subarray(5000));
      await a.finish();
    } finally {
      await fh.close();
    }
    expect((await readFile(path)).equals(all)).toBe(true);
    expect(w.hash.digest('hex')).toBe(sha(all));
  });

  it('writes through the page cache unless O_DIRECT is asked for, whatever the environment says', async () => {
    const data = bytes(4 * MiB + 5);
    const { path, fh, w } = await partialFile(Buffer.alloc(0));
    // The callers turn the variable into the option (directIoWanted); the writer itself must not read it.
    const before = process.env[DIRECT_IO_ENV];
    process.env[DIRECT_IO_ENV] = '1';
    try {
      const a = await BatchAppender.open(path, fh, w, data.length, () => undefined);
      expect(a.directIO).toBe(false);
      await pushAll(a, data);
      await a.finish();
    } finally {
      if (before === undefined) delete process.env[DIRECT_IO_ENV];
      else process.env[DIRECT_IO_ENV] = before;
      await fh.close();
    }
    expect((await readFile(path)).equals(data)).toBe(true);
    expect(w.hash.digest('hex')).toBe(sha(data));
  });

  it('refuses bytes past the total, counting the ones still being written', async () => {
    const { path, fh, w } = await partialFile(Buffer.alloc(0));
    try {
      const a = await BatchAppender.open(path, fh, w, 4 * MiB + 10, () => undefined, DIRECT);
      a.push(bytes(4 * MiB));
      expect(() => a.push(bytes(11))).toThrow(/more than/);
      await a.finish();
    } finally {
      await fh.close();
    }
  });

  it('keeps the state true when a write fails while later ones succeed', async () => {
    const all = bytes(20 * MiB + 123);
    const have = 4097;
    const { path, fh, w } = await partialFile(all.subarray(0, have));
    const real = await openDirect(path, 4, BATCH_BYTES);
    // The second write fails late: with O_DIRECT the ones after it finish first and must not count.
    const direct = real ? { fh: failingWrite(real.fh, 2, 200), bufs: real.bufs } : undefined;
    const plainFh = real ? fh : failingWrite(fh, 2, 200);
    const a = new BatchAppender(plainFh, w, all.length, () => undefined, direct);
    await a.readHead();
    let err: unknown;
    try {
      await pushAll(a, all.subarray(have));
    } catch (e) {
      err = e;
    }
    await a.finish().catch((e: unknown) => (err ??= e));
    await fh.close();
    expect((err as Error).message).toBe('injected write failure');
    // The first batch (with O_DIRECT: the head block's start read back, then new bytes) landed; the second did
    // not, so nothing after it counts.
    expect(w.hashed).toBe(have + BATCH_BYTES - (real ? have % 4096 : 0));
    await expectConsistent(path, w, all);
  });

  it('keeps the state true when the tail write fails', async () => {
    const all = bytes(4 * MiB + 100);
    const { path, fh, w } = await partialFile(Buffer.alloc(0));
    const a = new BatchAppender(failingWrite(fh, 1), w, all.length, () => undefined, await openDirect(path, 4, BATCH_BYTES));
    try {
      await pushAll(a, all);
      await expect(a.finish()).rejects.toThrow('injected write failure');
    } finally {
      await fh.close();
    }
    expect(w.hashed).toBe(directHere ? 4 * MiB : 0);
    await expectConsistent(path, w, all);
  });
});
