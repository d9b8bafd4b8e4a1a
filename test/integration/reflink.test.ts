/**
 * reflink clones against real filesystems (root): on xfs made with reflink=1 a 1 GiB sparse image is cloned in
 * milliseconds and shares its extents (filefrag flags them 'shared', free space does not move); on ext4
 * supportsReflink says no and reflinkCopy fails without leaving a partial copy.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidFromBytes } from '../../src/core/disk/uuid.js';
import { GiB, MiB } from '../../src/core/units.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { createSparseFile, readAt, writeAt } from '../../src/exec/tools/disk-image.js';
import { attachLoop, detachLoop, listLoops } from '../../src/exec/tools/loop.js';
import { makeFilesystem } from '../../src/exec/tools/mkfs.js';
import { mount, umount } from '../../src/exec/tools/mount.js';
import { reflinkCopy, supportsReflink } from '../../src/exec/tools/reflink.js';
import { requireRoot } from '../harness/env.js';

requireRoot();

const runner = new HostProcessRunner();

class UndoStack {
  private readonly items: { what: string; fn: () => Promise<unknown> }[] = [];
  push(what: string, fn: () => Promise<unknown>): void {
    this.items.push({ what, fn });
  }
  async run(): Promise<void> {
    const errors: string[] = [];
    for (const { what, fn } of this.items.splice(0).reverse()) {
      await fn().catch((e: unknown) => errors.push(`${what}: ${String(e)}`));
    }
    if (errors.length > 0) throw new Error(`cleanup failed:\n${errors.join('\n')}`);
  }
}

async function freeBytes(dir: string): Promise<number> {
  const { stdout } = await runner.run(['df', '-B1', '--output=avail', dir]);
  return Number(stdout.trim().split('\n').at(-1));
}

/** A filesystem of `fs` on a loop-mounted image file; returns its mount point. */
async function scratchFs(work: string, name: string, fs: 'xfs' | 'ext4', bytes: number, undo: UndoStack): Promise<string> {
  const img = join(work, `${name}.img`);
  await createSparseFile(img, bytes);
  undo.push(`remove ${img}`, () => rm(img, { force: true }));
  const loop = await attachLoop(runner, { file: img });
  undo.push(`detach ${loop.device}`, () => detachLoop(runner, loop));
  if (fs === 'xfs') {
    // Explicit, though xfsprogs >= 5.1 defaults to it: the point of the test is reflink=1.
    await runner.run(['mkfs.xfs', '-q', '-f', '-m', 'reflink=1', loop.device]);
  } else {
    await makeFilesystem(runner, { device: loop.device, fs: 'ext4', uuid: uuidFromBytes(randomBytes(16)) });
  }
  const mnt = join(work, `${name}-mnt`);
  await mkdir(mnt);
  const m = await mount(runner, { device: loop.device, target: mnt });
  undo.push(`umount ${mnt}`, () => umount(runner, m));
  return mnt;
}

describe('reflink clones (root)', () => {
  let work = '';
  const undo = new UndoStack();

  beforeAll(async () => {
    work = await mkdtemp('/var/tmp/vmf-h8-reflink-');
    undo.push('remove work dir', () => rm(work, { recursive: true, force: true }));
  });

  afterAll(async () => {
    await undo.run();
    expect((await listLoops(runner)).filter((l) => l.backFile.startsWith(work))).toEqual([]);
    const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.split(' ')[4]?.startsWith(work));
    expect(mounts).toEqual([]);
  });

  it('clones a 1 GiB sparse image on xfs instantly, sharing its extents', async () => {
    const t0 = performance.now();
    const mnt = await scratchFs(work, 'xfs', 'xfs', 2 * GiB, undo);
    console.log(`xfs scratch filesystem: ${(performance.now() - t0).toFixed(0)} ms`);
    expect(await supportsReflink(runner, mnt)).toBe(true);

    const src = join(mnt, 'golden.raw');
    await createSparseFile(src, GiB);
    // Some real data, as a golden image has: 3 x 16 MiB spread over the file.
    const data = [0, 400 * MiB, GiB - 16 * MiB].map((at) => ({ at, bytes: randomBytes(16 * MiB) }));
    for (const d of data) await writeAt(src, d.at, d.bytes);
    await runner.run(['sync', '-f', src]);
    const freeBefore = await freeBytes(mnt);

    const dst = join(mnt, 'clone.raw');
    const t1 = performance.now();
    await reflinkCopy(runner, src, dst);
    const ms = performance.now() - t1;
    console.log(`reflink of a 1 GiB image (48 MiB allocated) on xfs: ${ms.toFixed(1)} ms`);

    expect((await stat(dst)).size).toBe(GiB);
    // Copying 48 MiB would cost at least that much free space; sharing costs only metadata.
    expect(freeBefore - (await freeBytes(mnt))).toBeLessThan(4 * MiB);
    const { stdout } = await runner.run(['filefrag', '-v', dst]);
    const extents = stdout.split('\n').filter((l) => /^\s*\d+:/.test(l));
    expect(extents.length).toBeGreaterThan(0);
    for (const e of extents) expect(e).toMatch(/shared/);
    // The copy reads back the data, and stays sparse (48 MiB allocated, not 1 GiB).
    for (const d of data) expect((await readAt(dst, d.at, d.bytes.length)).equals(d.bytes)).toBe(true);
    expect((await readAt(dst, 200 * MiB, MiB)).every((b) => b === 0)).toBe(true);
    expect((await stat(dst)).blocks * 512).toBeLessThan(64 * MiB);

    await expect(reflinkCopy(runner, src, dst)).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('reports ext4 as unsupported and leaves no partial copy', async () => {
    const mnt = await scratchFs(work, 'ext4', 'ext4', 256 * MiB, undo);
    expect(await supportsReflink(runner, mnt)).toBe(false);
    const src = join(mnt, 'golden.raw');
    await createSparseFile(src, 64 * MiB);
    await writeAt(src, 0, randomBytes(MiB));
    const dst = join(mnt, 'clone.raw');
    await expect(reflinkCopy(runner, src, dst)).rejects.toMatchObject({ code: 'COMMAND_FAILED', hint: expect.stringMatching(/xfs/) });
    expect(await stat(dst).catch(() => null)).toBeNull();
  });
});
