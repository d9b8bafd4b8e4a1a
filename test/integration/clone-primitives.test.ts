/**
 * The fast path's building blocks against the real tools (root): a golden raw image (MBR + ext4 root + swap), a
 * larger qcow2 overlay on it, the overlay exported as a raw file over FUSE, the partition table grown, the root
 * filesystem checked, grown, mounted and edited through a loop device at its offset, then everything taken down.
 * The golden image must not change, the overlay must hold the edit, nothing may stay attached or mounted.
 * Each step's wall time is printed: the issue expects overlay + export + loop + mount + edit in about 0.2 s.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { growGoldenMbr } from '../../src/core/disk/grow.js';
import { planDiskLayout, rootPartition, swapPartition } from '../../src/core/disk/layout.js';
import { mbrBytes } from '../../src/core/disk/mbr.js';
import { swapHeaderBytes } from '../../src/core/disk/swap-header.js';
import { uuidFromBytes } from '../../src/core/disk/uuid.js';
import { GiB, MiB } from '../../src/core/units.js';
import { pidAlive } from '../../src/exec/pid.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { createSparseFile, readAt, writeAt } from '../../src/exec/tools/disk-image.js';
import { growFilesystem } from '../../src/exec/tools/grow-fs.js';
import { attachLoop, attachPartitions, detachLoop, detachPartitions, listLoops } from '../../src/exec/tools/loop.js';
import { makeFilesystem, makeSwap } from '../../src/exec/tools/mkfs.js';
import { mount, umount } from '../../src/exec/tools/mount.js';
import { createOverlay, imageInfo } from '../../src/exec/tools/qcow2.js';
import {
  cleanupStaleFuseExports,
  exportQcow2AsRaw,
  recoverFuseExport,
  staleFuseExports,
  type FuseExport,
} from '../../src/exec/tools/qsd-fuse.js';
import { requireRoot } from '../harness/env.js';

requireRoot();

const runner = new HostProcessRunner();
const newUuid = () => uuidFromBytes(randomBytes(16));

const GOLDEN_BYTES = 512 * MiB;
const SWAP_BYTES = 64 * MiB;
const CLONE_BYTES = 2 * GiB;

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Undo actions run newest first; every one runs even if an earlier one fails. */
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

class Timer {
  readonly steps: [string, number][] = [];
  async time<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.steps.push([what, performance.now() - t0]);
    }
  }
  report(title: string): string {
    return [title, ...this.steps.map(([w, ms]) => `  ${ms.toFixed(1).padStart(8)} ms  ${w}`)].join('\n');
  }
}

async function fuseMountsUnder(dir: string): Promise<string[]> {
  return (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .filter((l) => l.includes(' - fuse'))
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp.startsWith(dir));
}

/** Online ext4 resize needs CAP_SYS_RESOURCE (bit 24), which some sandboxes drop even for root. */
async function hasCapSysResource(): Promise<boolean> {
  const hex = /CapEff:\s*([0-9a-f]+)/.exec(await readFile('/proc/self/status', 'utf8'))?.[1] ?? '0';
  return (BigInt(`0x${hex}`) & (1n << 24n)) !== 0n;
}

async function waitGone(pid: number): Promise<void> {
  for (let i = 0; i < 500 && pidAlive(pid); i++) await sleep(10);
}

describe('clone primitives: qcow2 overlay + FUSE export + grown MBR + loop (root)', () => {
  let work = '';
  let golden = '';
  let goldenSha = '';
  const marker = `golden-${randomBytes(6).toString('hex')}`;
  const swapUuid = newUuid();
  const global = new UndoStack();
  const pids: number[] = [];

  beforeAll(async () => {
    await mkdir('/var/tmp', { recursive: true });
    work = await mkdtemp('/var/tmp/vmf-h8-clone-');
    global.push('remove work dir', () => rm(work, { recursive: true, force: true }));
    global.push('stale FUSE exports', () => cleanupStaleFuseExports(runner, work));

    // The golden image, made the cold-path way.
    golden = join(work, 'golden.raw');
    const layout = planDiskLayout({ diskBytes: GOLDEN_BYTES, swapBytes: SWAP_BYTES, fs: 'ext4' });
    await createSparseFile(golden, GOLDEN_BYTES);
    const boot = mbrBytes(layout, 0x5eed1234);
    randomBytes(0x1b8).copy(boot, 0); // stands in for GRUB's boot.img, which a grown MBR must keep
    await writeAt(golden, 0, boot);
    const parts = await attachPartitions(runner, { file: golden, layout });
    const undo = new UndoStack();
    undo.push('detach golden partitions', () => detachPartitions(runner, parts.undo));
    try {
      const rootDev = parts.devices.find((d) => d.role === 'root')?.device ?? '';
      const swapDev = parts.devices.find((d) => d.role === 'swap')?.device ?? '';
      await makeFilesystem(runner, { device: rootDev, fs: 'ext4', uuid: newUuid() });
      await makeSwap(runner, { device: swapDev, uuid: swapUuid });
      const mnt = join(work, 'golden-mnt');
      await mkdir(mnt);
      const m = await mount(runner, { device: rootDev, target: mnt });
      undo.push('umount golden', () => umount(runner, m));
      await writeFile(join(mnt, 'marker'), marker);
    } finally {
      await undo.run();
    }
    goldenSha = await sha256(golden);
  });

  afterAll(async () => {
    await global.run();
    for (const pid of pids) expect(pidAlive(pid), `qemu-storage-daemon ${pid} still runs`).toBe(false);
    const ours = (await listLoops(runner)).filter((l) => l.backFile.startsWith(work));
    expect(ours).toEqual([]);
    expect(await fuseMountsUnder(work)).toEqual([]);
  });

  it('clones, grows and edits through the overlay without touching the golden image', async () => {
    const t = new Timer();
    const undo = new UndoStack();
    const overlay = join(work, 'clone.qcow2');
    const rawPath = join(work, 'clone.raw');
    const mnt = join(work, 'clone-mnt');
    await mkdir(mnt);
    let exp: FuseExport | undefined;
    try {
      await t.time('create qcow2 overlay', () => createOverlay({ backing: golden, backingFormat: 'raw', overlay, sizeBytes: CLONE_BYTES }));
      exp = await t.time('FUSE export (qemu-storage-daemon live)', () => exportQcow2AsRaw(runner, { qcow2Path: overlay, exportPath: rawPath }));
      const e = exp;
      pids.push(e.pid);
      undo.push('stop export', () => e.stop());
      expect(e.sizeBytes).toBe(CLONE_BYTES);
      expect((await stat(e.rawPath)).size).toBe(CLONE_BYTES);

      const plan = await t.time('read + rewrite MBR (grown layout)', async () => {
        const sector = await readAt(e.rawPath, 0, 512);
        const grown = growGoldenMbr({ goldenSector: sector, goldenDiskBytes: GOLDEN_BYTES, targetDiskBytes: CLONE_BYTES, fs: 'ext4' });
        await writeAt(e.rawPath, 0, grown.mbr);
        expect(grown.mbr.subarray(0, 0x1b8).equals(sector.subarray(0, 0x1b8))).toBe(true);
        return grown.plan;
      });
      expect(plan.swap).toBe('moved');
      const root = rootPartition(plan.layout);
      const swap = swapPartition(plan.layout);

      const rootLoop = await t.time('losetup root at offset', () =>
        attachLoop(runner, { file: e.rawPath, offsetBytes: root.offsetBytes, sizeBytes: root.sizeBytes }),
      );
      undo.push('detach root loop', () => detachLoop(runner, rootLoop));
      await t.time('e2fsck -f -y', () => runner.run(['e2fsck', '-f', '-y', rootLoop.device]));
      await t.time('resize2fs (offline)', () => growFilesystem(runner, { fs: 'ext4', device: rootLoop.device }));
      const m = await t.time('mount root', () => mount(runner, { device: rootLoop.device, target: mnt }));
      undo.push('umount clone', () => umount(runner, m));
      expect(await readFile(join(mnt, 'marker'), 'utf8')).toBe(marker);
      await t.time('edit (write a file)', () => writeFile(join(mnt, 'clone-was-here'), 'yes\n'));
      const { stdout } = await runner.run(['df', '-B1', '--output=size', mnt]);
      const fsBytes = Number(stdout.trim().split('\n').at(-1));
      expect(fsBytes).toBeGreaterThan(GOLDEN_BYTES);
      expect(fsBytes).toBeGreaterThan(0.9 * root.sizeBytes);
      await t.time('umount root', () => umount(runner, m));
      await t.time('losetup -d root', () => detachLoop(runner, rootLoop));

      // The swap partition moved: its header is re-made, under the golden's UUID so fstab stays valid. One page
      // written directly costs far less than attaching a loop device for mkswap.
      expect(plan.mkswap).toEqual(swap);
      await t.time('swap header at new place (4 KiB write)', () =>
        writeAt(e.rawPath, swap?.offsetBytes ?? -1, swapHeaderBytes({ sizeBytes: swap?.sizeBytes ?? 0, uuid: swapUuid })),
      );
      const probe = await runner.run(['blkid', '-p', '-O', String(swap?.offsetBytes), '-o', 'export', e.rawPath]);
      expect(probe.stdout).toMatch(/^TYPE=swap$/m);
      expect(probe.stdout).toContain(`UUID=${swapUuid}`);
      await t.time('stop export', () => e.stop());
      expect(pidAlive(e.pid)).toBe(false);
    } finally {
      await undo.run();
      console.log(t.report(`clone primitives (golden ${GOLDEN_BYTES / MiB} MiB -> clone ${CLONE_BYTES / MiB} MiB)`));
      const raw = ['create qcow2 overlay', 'FUSE export (qemu-storage-daemon live)', 'losetup root at offset', 'mount root', 'edit (write a file)'];
      const total = t.steps.filter(([w]) => raw.includes(w)).reduce((a, [, ms]) => a + ms, 0);
      console.log(`  raw operations (overlay + export + loop + mount + edit): ${total.toFixed(1)} ms`);
    }

    expect(await stat(rawPath).catch(() => null)).toBeNull();
    expect(await sha256(golden)).toBe(goldenSha);
    const info = await imageInfo(runner, overlay);
    expect(info).toMatchObject({ format: 'qcow2', virtualSizeBytes: CLONE_BYTES, fullBackingFile: golden, backingFormat: 'raw', corrupt: false });

    // The edit lives in the overlay: export it again, read-only, and look.
    const undo2 = new UndoStack();
    try {
      const again = await exportQcow2AsRaw(runner, { qcow2Path: overlay, exportPath: join(work, 'check.raw'), readOnly: true });
      pids.push(again.pid);
      undo2.push('stop check export', () => again.stop());
      const sector = await readAt(again.rawPath, 0, 512);
      const root = rootPartition(growGoldenMbr({ goldenSector: sector, goldenDiskBytes: CLONE_BYTES, targetDiskBytes: CLONE_BYTES }).plan.layout);
      expect(root.sizeBytes).toBeGreaterThan(GOLDEN_BYTES);
      const loop = await attachLoop(runner, { file: again.rawPath, offsetBytes: root.offsetBytes, sizeBytes: root.sizeBytes, readOnly: true });
      undo2.push('detach check loop', () => detachLoop(runner, loop));
      const checkMnt = join(work, 'check-mnt');
      await mkdir(checkMnt);
      const m = await mount(runner, { device: loop.device, target: checkMnt, options: ['ro', 'noload'] });
      undo2.push('umount check', () => umount(runner, m));
      expect(await readFile(join(checkMnt, 'clone-was-here'), 'utf8')).toBe('yes\n');
      expect(await readFile(join(checkMnt, 'marker'), 'utf8')).toBe(marker);
    } finally {
      await undo2.run();
    }
    expect(await sha256(golden)).toBe(goldenSha);
  });

  it('grows ext4 online instead (no e2fsck -f) where the kernel lets us, for comparison', async () => {
    const t = new Timer();
    const undo = new UndoStack();
    const mnt = join(work, 'online-mnt');
    await mkdir(mnt);
    try {
      const overlay = join(work, 'online.qcow2');
      await t.time('create qcow2 overlay', () => createOverlay({ backing: golden, overlay, sizeBytes: CLONE_BYTES }));
      const e = await t.time('FUSE export (qemu-storage-daemon live)', () => exportQcow2AsRaw(runner, { qcow2Path: overlay, exportPath: join(work, 'online.raw') }));
      pids.push(e.pid);
      undo.push('stop export', () => e.stop());
      const plan = await t.time('read + rewrite MBR (grown layout)', async () => {
        const grown = growGoldenMbr({ goldenSector: await readAt(e.rawPath, 0, 512), goldenDiskBytes: GOLDEN_BYTES, targetDiskBytes: CLONE_BYTES });
        await writeAt(e.rawPath, 0, grown.mbr);
        return grown.plan;
      });
      const root = rootPartition(plan.layout);
      const loop = await t.time('losetup root at offset', () => attachLoop(runner, { file: e.rawPath, offsetBytes: root.offsetBytes, sizeBytes: root.sizeBytes }));
      undo.push('detach root loop', () => detachLoop(runner, loop));
      const m = await t.time('mount root', () => mount(runner, { device: loop.device, target: mnt }));
      undo.push('umount', () => umount(runner, m));
      const canResizeOnline = await hasCapSysResource();
      const grow = t.time('resize2fs (online)', () => growFilesystem(runner, { fs: 'ext4', device: loop.device, mountPoint: mnt }));
      if (canResizeOnline) {
        await grow;
        await t.time('edit (write a file)', () => writeFile(join(mnt, 'online'), 'yes\n'));
        const { stdout } = await runner.run(['df', '-B1', '--output=size', mnt]);
        expect(Number(stdout.trim().split('\n').at(-1))).toBeGreaterThan(0.9 * root.sizeBytes);
      } else {
        // Sandboxes without CAP_SYS_RESOURCE: the kernel refuses, and the error must say what to do instead.
        await expect(grow).rejects.toMatchObject({ code: 'COMMAND_FAILED', hint: expect.stringMatching(/CAP_SYS_RESOURCE/) });
      }
      await t.time('umount + losetup -d + stop export', () => undo.run());
    } finally {
      await undo.run();
      console.log(t.report('online grow variant'));
    }
    expect(await sha256(golden)).toBe(goldenSha);
  });

  it('cleans up the stale mount a SIGKILLed daemon leaves', async () => {
    const overlay = join(work, 'killed.qcow2');
    await createOverlay({ backing: golden, overlay });
    const exp = await exportQcow2AsRaw(runner, { qcow2Path: overlay, exportPath: join(work, 'killed.raw') });
    pids.push(exp.pid);
    try {
      process.kill(exp.pid, 'SIGKILL');
      await waitGone(exp.pid);
      const stale = await staleFuseExports(work);
      expect(stale).toEqual([exp.rawPath]);
      await expect(statfs(exp.rawPath)).rejects.toMatchObject({ code: 'ENOTCONN' });
      expect(await cleanupStaleFuseExports(runner, work)).toEqual([exp.rawPath]);
      expect(await staleFuseExports(work)).toEqual([]);
      expect(await fuseMountsUnder(work)).toEqual([]);
      expect(await stat(exp.rawPath).catch(() => null)).toBeNull();
    } finally {
      await exp.stop();
    }
    // The daemon flushed nothing on SIGKILL, yet the overlay is still a valid image.
    expect((await imageInfo(runner, overlay)).corrupt).toBe(false);
  });

  it('recovers an export whose vmforge died (daemon still serving)', async () => {
    const overlay = join(work, 'orphan.qcow2');
    await createOverlay({ backing: golden, overlay, sizeBytes: CLONE_BYTES });
    const exp = await exportQcow2AsRaw(runner, { qcow2Path: overlay, exportPath: join(work, 'orphan.raw') });
    pids.push(exp.pid);
    try {
      // Only the plain-JSON undo data is used, as after a crash.
      const ref = JSON.parse(JSON.stringify(exp.ref)) as typeof exp.ref;
      await recoverFuseExport(runner, ref);
      await waitGone(exp.pid);
      expect(pidAlive(exp.pid)).toBe(false);
      expect(await fuseMountsUnder(work)).toEqual([]);
      expect(await stat(exp.rawPath).catch(() => null)).toBeNull();
      await recoverFuseExport(runner, ref); // twice is fine
    } finally {
      await exp.stop();
    }
  });

  it('reports a daemon that cannot start, and leaves no export file behind', async () => {
    const exportPath = join(work, 'missing.raw');
    await expect(exportQcow2AsRaw(runner, { qcow2Path: join(work, 'does-not-exist.qcow2'), exportPath })).rejects.toMatchObject({
      code: 'COMMAND_FAILED',
    });
    expect(await stat(exportPath).catch(() => null)).toBeNull();
  });
});
