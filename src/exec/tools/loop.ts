/**
 * Loop devices for a partitioned disk image, two ways:
 *  - 'loop-offset': one loop device per partition (losetup --offset --sizelimit). Needs nothing from the kernel
 *    beyond the loop driver, so it works in containers and on kernels without partition scanning. Default.
 *  - 'partx': one loop device for the whole disk, partition nodes added with `partx -a` (BLKPG ioctl), which
 *    works even when the loop driver does not scan partitions itself (`losetup -P` makes no loopNp1 there).
 * Every attach returns plain-JSON undo data; every detach is idempotent and refuses to detach a device that
 * has since been reused for another file.
 */
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VmforgeError } from '../../errors.js';
import type { DiskLayout, PartitionRole } from '../../core/disk/layout.js';
import type { CommandRunner } from '../runner.js';

export type PartitionStrategy = 'loop-offset' | 'partx';
export const DEFAULT_PARTITION_STRATEGY: PartitionStrategy = 'loop-offset';

/** losetup/partx only issue ioctls; a minute means the kernel is stuck, not slow. */
const TOOL_TIMEOUT_MS = 60_000;

export interface LoopInfo {
  device: string;
  backFile: string;
  offset: number;
  sizelimit: number;
  autoclear: boolean;
}

/** Undo data for one attached loop device: enough to recognise it as ours before detaching it. */
export interface LoopRef {
  device: string;
  /** Canonical path of the backing file, as the kernel reports it. */
  backFile: string;
  offset: number;
}

const DELETED_SUFFIX = ' (deleted)';

/** Parses `losetup --list --json -O NAME,BACK-FILE,OFFSET,SIZELIMIT,AUTOCLEAR` (empty output = no loops). */
export function parseLosetupJson(stdout: string): LoopInfo[] {
  if (stdout.trim() === '') return [];
  const doc = JSON.parse(stdout) as { loopdevices?: Record<string, unknown>[] };
  return (doc.loopdevices ?? []).map((d) => {
    let backFile = typeof d['back-file'] === 'string' ? d['back-file'] : '';
    if (backFile.endsWith(DELETED_SUFFIX)) backFile = backFile.slice(0, -DELETED_SUFFIX.length);
    return {
      device: String(d.name),
      backFile,
      offset: Number(d.offset ?? 0),
      sizelimit: Number(d.sizelimit ?? 0),
      autoclear: d.autoclear === true || d.autoclear === '1',
    };
  });
}

export async function listLoops(runner: CommandRunner): Promise<LoopInfo[]> {
  const { stdout } = await runner.run(['losetup', '--list', '--json', '-O', 'NAME,BACK-FILE,OFFSET,SIZELIMIT,AUTOCLEAR'], {
    timeoutMs: TOOL_TIMEOUT_MS,
  });
  return parseLosetupJson(stdout);
}

async function canonical(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return path;
  }
}

/** Loop devices whose backing file is `file` (by canonical path). */
export async function loopsBackingFile(runner: CommandRunner, file: string): Promise<LoopInfo[]> {
  const want = await canonical(file);
  return (await listLoops(runner)).filter((l) => l.backFile === want);
}

const RETRYABLE = /Device or resource busy|Resource temporarily unavailable|EBUSY|EAGAIN/i;

export interface AttachLoopInput {
  file: string;
  offsetBytes?: number;
  sizeBytes?: number;
  readOnly?: boolean;
  /** Attempts when `losetup -f` loses the race for a free device to another process. */
  attempts?: number;
}

export async function attachLoop(runner: CommandRunner, input: AttachLoopInput): Promise<LoopRef> {
  const argv = ['losetup', '--find', '--show'];
  if (input.readOnly) argv.push('--read-only');
  if (input.offsetBytes !== undefined) argv.push('--offset', String(input.offsetBytes));
  if (input.sizeBytes !== undefined) argv.push('--sizelimit', String(input.sizeBytes));
  argv.push(input.file);
  const attempts = input.attempts ?? 6;
  for (let attempt = 1; ; attempt++) {
    try {
      const { stdout } = await runner.run(argv, { timeoutMs: TOOL_TIMEOUT_MS });
      const device = stdout.trim();
      if (!device.startsWith('/dev/')) throw new VmforgeError('INTERNAL', `losetup printed '${device}' instead of a device`);
      return { device, backFile: await canonical(input.file), offset: input.offsetBytes ?? 0 };
    } catch (e) {
      if (attempt >= attempts || !(e instanceof VmforgeError && e.code === 'COMMAND_FAILED' && RETRYABLE.test(e.message))) throw e;
      await sleep(25 * 2 ** attempt);
    }
  }
}

const GONE = /No such device or address|No such device|No such file or directory/i;

/**
 * Detaches `ref` if it is still attached to the same file at the same offset; a device that is gone or now
 * backs something else is left alone (its number may have been reused after a crash).
 */
export async function detachLoop(runner: CommandRunner, ref: LoopRef, opts: { sysBlock?: string } = {}): Promise<'detached' | 'gone'> {
  const cur = (await loopFromSysfs(ref.device, opts.sysBlock ?? '/sys/block')) ?? (await listLoops(runner)).find((l) => l.device === ref.device);
  if (!cur || cur.backFile !== ref.backFile || cur.offset !== ref.offset) return 'gone';
  try {
    await runner.run(['losetup', '--detach', ref.device], { timeoutMs: TOOL_TIMEOUT_MS });
    return 'detached';
  } catch (e) {
    if (e instanceof VmforgeError && e.code === 'COMMAND_FAILED' && GONE.test(e.message)) return 'gone';
    throw e;
  }
}

/**
 * What `losetup --list` says about one device, read from sysfs (what losetup reads too) without starting a
 * process; null when sysfs has no answer (device gone, or no sysfs), and the caller asks losetup.
 */
async function loopFromSysfs(device: string, sysBlock: string): Promise<Pick<LoopInfo, 'device' | 'backFile' | 'offset'> | null> {
  const dir = `${sysBlock}/${basename(device)}/loop`;
  try {
    const [back, offset] = await Promise.all([readFile(`${dir}/backing_file`, 'utf8'), readFile(`${dir}/offset`, 'utf8')]);
    return { device, backFile: back.trim().replace(/ \(deleted\)$/, ''), offset: Number(offset.trim()) };
  } catch {
    return null;
  }
}

/** Partition N of a whole-disk device: loop0 -> loop0p1 (names ending in a digit take a 'p'). */
export function partitionDevice(device: string, index: number): string {
  return /\d$/.test(device) ? `${device}p${index}` : `${device}${index}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function waitForNodes(paths: string[], timeoutMs: number): Promise<boolean> {
  for (let waited = 0; ; waited += 20) {
    const present = await Promise.all(paths.map(exists));
    if (present.every(Boolean)) return true;
    if (waited >= timeoutMs) return false;
    await sleep(20);
  }
}

/** Partition nodes the kernel currently has for a whole-disk device, from /sys/block/loopN/loopNp*. */
async function kernelPartitions(device: string): Promise<string[]> {
  const name = basename(device);
  try {
    return (await readdir(`/sys/block/${name}`)).filter((e) => e.startsWith(`${name}p`));
  } catch {
    return [];
  }
}

/** Attaches the whole image and has partx add the partition nodes for `partitions`. */
export async function attachWholeWithPartx(
  runner: CommandRunner,
  input: { file: string; partitions: number[]; attempts?: number },
): Promise<{ loop: LoopRef; partitionDevices: Map<number, string> }> {
  const loop = await attachLoop(runner, { file: input.file, attempts: input.attempts });
  try {
    const nodes = new Map(input.partitions.map((n) => [n, partitionDevice(loop.device, n)] as const));
    try {
      await runner.run(['partx', '--add', loop.device], { timeoutMs: TOOL_TIMEOUT_MS });
    } catch (e) {
      // A kernel that scans loop partitions itself already made them; partx then fails with EBUSY.
      if (!(await waitForNodes([...nodes.values()], 0))) throw e;
    }
    if (!(await waitForNodes([...nodes.values()], 5000))) {
      throw new VmforgeError('COMMAND_FAILED', `partx --add ${loop.device} did not create ${[...nodes.values()].join(', ')}`, {
        hint: "use the 'loop-offset' partition strategy on this host",
      });
    }
    return { loop, partitionDevices: nodes };
  } catch (e) {
    await detachWholeWithPartx(runner, loop).catch(() => undefined);
    throw e;
  }
}

/** Removes the partition nodes (partx -d) then the whole-disk loop device. Idempotent. */
export async function detachWholeWithPartx(runner: CommandRunner, loop: LoopRef): Promise<'detached' | 'gone'> {
  const cur = (await listLoops(runner)).find((l) => l.device === loop.device);
  if (!cur || cur.backFile !== loop.backFile || cur.offset !== loop.offset) return 'gone';
  if ((await kernelPartitions(loop.device)).length > 0) {
    await runner.run(['partx', '--delete', loop.device], { timeoutMs: TOOL_TIMEOUT_MS });
  }
  return detachLoop(runner, loop);
}

/** Undo data for attachPartitions (plain JSON, for the pipeline journal). */
export type PartitionAttachment = { strategy: 'loop-offset'; loops: LoopRef[] } | { strategy: 'partx'; loop: LoopRef };

export interface AttachedPartition {
  index: number;
  role: PartitionRole;
  device: string;
}

export interface AttachedPartitions {
  devices: AttachedPartition[];
  undo: PartitionAttachment;
}

/** Block devices for every partition of `layout` in the image `file`. On failure nothing stays attached. */
export async function attachPartitions(
  runner: CommandRunner,
  input: { file: string; layout: DiskLayout; strategy?: PartitionStrategy },
): Promise<AttachedPartitions> {
  const strategy = input.strategy ?? DEFAULT_PARTITION_STRATEGY;
  const parts = input.layout.partitions;
  switch (strategy) {
    case 'loop-offset': {
      const loops: LoopRef[] = [];
      const devices: AttachedPartition[] = [];
      try {
        for (const p of parts) {
          const loop = await attachLoop(runner, { file: input.file, offsetBytes: p.offsetBytes, sizeBytes: p.sizeBytes });
          loops.push(loop);
          devices.push({ index: p.index, role: p.role, device: loop.device });
        }
      } catch (e) {
        await detachPartitions(runner, { strategy, loops }).catch(() => undefined);
        throw e;
      }
      return { devices, undo: { strategy, loops } };
    }
    case 'partx': {
      const { loop, partitionDevices } = await attachWholeWithPartx(runner, { file: input.file, partitions: parts.map((p) => p.index) });
      const devices = parts.map((p) => ({ index: p.index, role: p.role, device: partitionDevices.get(p.index) ?? '' }));
      return { devices, undo: { strategy, loop } };
    }
  }
}

/** Undoes attachPartitions; safe to run twice or after a crash. Tries every device, then reports the first error. */
export async function detachPartitions(runner: CommandRunner, undo: PartitionAttachment): Promise<void> {
  switch (undo.strategy) {
    case 'loop-offset': {
      const errors: unknown[] = [];
      for (const loop of [...undo.loops].reverse()) {
        await detachLoop(runner, loop).catch((e: unknown) => errors.push(e));
      }
      if (errors.length > 0) throw errors[0];
      return;
    }
    case 'partx':
      await detachWholeWithPartx(runner, undo.loop);
      return;
  }
}
