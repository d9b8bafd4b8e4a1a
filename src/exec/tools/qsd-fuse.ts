/**
 * A qcow2 image seen as a raw file, through qemu-storage-daemon's FUSE export: the daemon mounts a FUSE file
 * over an existing regular file and serves the image's guest-visible bytes there. Loop devices, mkfs, e2fsck and
 * MBR writes then work on the qcow2 overlay as on a raw image, with no nbd module and no device-mapper.
 *
 * A daemon that dies without unmounting (SIGKILL, OOM) leaves a stale mount that answers ENOTCONN;
 * staleFuseExports/cleanupStaleFuseExports find and remove those, recoverFuseExport undoes one export from its
 * plain-JSON undo data after a crash of vmforge itself.
 */
import { open, readFile, realpath, rm, stat, statfs } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { conflict, invalidInput, VmforgeError } from '../../errors.js';
import type { DaemonRunner, RunningDaemon } from '../daemon.js';
import { pidAlive } from '../pid.js';
import type { CommandRunner } from '../runner.js';
import { parseMountinfo, type MountEntry } from './mount.js';

const POLL_MS = 5;
const DEFAULT_START_TIMEOUT_MS = 30_000;
/** How long a SIGTERMed daemon gets to flush the qcow2 metadata and unmount before SIGKILL. */
const STOP_GRACE_MS = 15_000;
const TOOL_TIMEOUT_MS = 60_000;

export interface ExportQcow2Input {
  qcow2Path: string;
  /** Where the raw view appears; must not exist (it is created as the empty regular file FUSE mounts over). */
  exportPath: string;
  /** Export read-only (the image is then opened read-only too). Default writable. */
  readOnly?: boolean;
  /** When given, the export must show exactly this many bytes. */
  expectedSizeBytes?: number;
  signal?: AbortSignal;
  startTimeoutMs?: number;
}

/** Undo data for an export (plain JSON): enough to stop it after vmforge itself died. */
export interface FuseExportRef {
  exportPath: string;
  qcow2Path: string;
  pid: number;
}

export interface FuseExport {
  /** The raw view; equal to the canonical exportPath. */
  rawPath: string;
  sizeBytes: number;
  pid: number;
  ref: FuseExportRef;
  /** SIGTERM, wait for the exit, unmount what the daemon left, remove the export file. Idempotent. */
  stop(): Promise<void>;
}

/** argv for the daemon; exported for tests and --dry-run output. */
export function qsdFuseArgv(input: { qcow2Path: string; exportPath: string; readOnly?: boolean }): string[] {
  for (const p of [input.qcow2Path, input.exportPath]) {
    // qemu's option syntax splits on ','; a doubled ',,' would be needed and is not worth supporting.
    if (p.includes(',')) throw invalidInput(`path '${p}' contains a comma, which qemu-storage-daemon options cannot hold`);
  }
  const ro = input.readOnly === true;
  return [
    'qemu-storage-daemon',
    '--blockdev',
    `driver=file,filename=${input.qcow2Path},node-name=f${ro ? ',read-only=on' : ''}`,
    '--blockdev',
    `driver=qcow2,file=f,node-name=q${ro ? ',read-only=on' : ''}`,
    '--export',
    `type=fuse,id=e,node-name=q,mountpoint=${input.exportPath},writable=${ro ? 'off' : 'on'}`,
  ];
}

async function canonicalFile(path: string): Promise<string> {
  // Only the directory is resolved: the file itself may be a stale mount whose lstat fails.
  try {
    return join(await realpath(dirname(path)), basename(path));
  } catch {
    return path;
  }
}

async function fuseMountAt(path: string, mountinfoPath = '/proc/self/mountinfo'): Promise<MountEntry | null> {
  const entries = parseMountinfo(await readFile(mountinfoPath, 'utf8'));
  return entries.filter((e) => e.mountPoint === path && isFuse(e)).at(-1) ?? null;
}

function isFuse(e: MountEntry): boolean {
  return e.fsType === 'fuse' || e.fsType.startsWith('fuse.');
}

export async function exportQcow2AsRaw(runner: CommandRunner & DaemonRunner, input: ExportQcow2Input): Promise<FuseExport> {
  if (!input.qcow2Path.startsWith('/') || !input.exportPath.startsWith('/')) {
    throw invalidInput(`qcow2 and export paths must be absolute (got '${input.qcow2Path}', '${input.exportPath}')`);
  }
  if (input.signal?.aborted) throw new VmforgeError('CANCELLED', `export of ${input.qcow2Path} was cancelled`);
  const exportPath = await canonicalFile(input.exportPath);
  try {
    await (await open(exportPath, 'wx', 0o600)).close();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw conflict(`export file ${exportPath} already exists`, `remove it (umount it first if it is a FUSE mount)`);
    throw e;
  }

  let daemon: RunningDaemon;
  try {
    daemon = runner.spawnDaemon({ argv: qsdFuseArgv({ qcow2Path: input.qcow2Path, exportPath, readOnly: input.readOnly }) });
  } catch (e) {
    await rm(exportPath, { force: true });
    throw e;
  }
  const ref: FuseExportRef = { exportPath, qcow2Path: input.qcow2Path, pid: daemon.pid };
  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopped ??= stopDaemon(runner, daemon, exportPath).catch((e: unknown) => {
      stopped = null; // a failed unmount may succeed when retried
      throw e;
    }));

  try {
    const sizeBytes = await waitForExport(daemon, exportPath, input);
    if (input.expectedSizeBytes !== undefined && sizeBytes !== input.expectedSizeBytes) {
      throw new VmforgeError('INTERNAL', `FUSE export of ${input.qcow2Path} shows ${sizeBytes} bytes, expected ${input.expectedSizeBytes}`);
    }
    return { rawPath: exportPath, sizeBytes, pid: daemon.pid, ref, stop };
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}

async function waitForExport(daemon: RunningDaemon, exportPath: string, input: ExportQcow2Input): Promise<number> {
  const timeoutMs = input.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  for (let waited = 0; ; waited += POLL_MS) {
    if (input.signal?.aborted) throw new VmforgeError('CANCELLED', `export of ${input.qcow2Path} was cancelled`);
    if (daemon.hasExited()) {
      const exit = await daemon.exited;
      const why = exit.error ? exit.error.message : exit.signal ? `was killed by ${exit.signal}` : `exited with ${exit.code ?? '?'}`;
      throw new VmforgeError('COMMAND_FAILED', `qemu-storage-daemon for ${input.qcow2Path} ${why}${exit.stderrTail.trim() ? `: ${exit.stderrTail.trim()}` : ''}`, {
        hint: /lock/i.test(exit.stderrTail) ? 'another process has the image open (a VM or a leftover daemon)' : undefined,
      });
    }
    if (await fuseMountAt(exportPath)) return (await stat(exportPath)).size;
    if (waited >= timeoutMs) {
      throw new VmforgeError('TIMEOUT', `qemu-storage-daemon did not mount ${exportPath} within ${timeoutMs} ms`);
    }
    await sleep(POLL_MS);
  }
}

async function stopDaemon(runner: CommandRunner, daemon: RunningDaemon, exportPath: string): Promise<void> {
  if (daemon.kill('SIGTERM')) {
    const timedOut = Symbol('timeout');
    // The grace timer is cancelled once the daemon exits: a pending timer would keep the CLI alive 15 s.
    const ac = new AbortController();
    const r = await Promise.race([daemon.exited, sleep(STOP_GRACE_MS, timedOut, { signal: ac.signal }).catch(() => null)]);
    ac.abort();
    if (r === timedOut) {
      daemon.kill('SIGKILL');
      await daemon.exited;
    }
  } else {
    await daemon.exited;
  }
  await unmountFuse(runner, exportPath);
  await rm(exportPath, { force: true });
}

/** Unmounts every FUSE mount stacked at `path`; 'gone' when there was none. */
async function unmountFuse(runner: CommandRunner, path: string): Promise<'unmounted' | 'gone'> {
  let did = false;
  while (await fuseMountAt(path)) {
    await runner.run(['umount', path], { timeoutMs: TOOL_TIMEOUT_MS });
    did = true;
  }
  return did ? 'unmounted' : 'gone';
}

function errnoOf(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * FUSE mounts at or below `dir` whose daemon is gone. Asked with statfs, which FUSE always forwards to the daemon
 * (ENOTCONN once it is gone); stat may still be answered from the kernel's attribute cache for a while.
 */
export async function staleFuseExports(dir: string, mountinfoPath = '/proc/self/mountinfo'): Promise<string[]> {
  let root: string;
  try {
    root = await realpath(dir);
  } catch {
    return [];
  }
  const under = (p: string) => p === root || p.startsWith(root.endsWith('/') ? root : `${root}/`);
  const candidates = parseMountinfo(await readFile(mountinfoPath, 'utf8')).filter((e) => isFuse(e) && under(e.mountPoint));
  const stale: string[] = [];
  for (const e of candidates) {
    try {
      await statfs(e.mountPoint);
    } catch (err) {
      if (errnoOf(err) === 'ENOTCONN') stale.push(e.mountPoint);
    }
  }
  return [...new Set(stale)];
}

/** Unmounts the stale FUSE exports under `dir` and removes their files; returns the paths it cleaned. */
export async function cleanupStaleFuseExports(runner: CommandRunner, dir: string): Promise<string[]> {
  const stale = await staleFuseExports(dir);
  for (const path of stale) {
    await unmountFuse(runner, path);
    await rm(path, { force: true });
  }
  return stale;
}

/** Whether `pid` is a qemu-storage-daemon serving a FUSE export at `exportPath` (pids get reused). */
async function isOurDaemon(pid: number, exportPath: string): Promise<boolean> {
  try {
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return basename(argv[0] ?? '') === 'qemu-storage-daemon' && argv.some((a) => a.includes(`mountpoint=${exportPath},`));
  } catch {
    return false;
  }
}

/**
 * Undoes an export after vmforge died: stops the daemon if it still runs (and is still ours), unmounts what is
 * left at the export path, removes the file. Safe to run twice.
 */
export async function recoverFuseExport(runner: CommandRunner, ref: FuseExportRef): Promise<void> {
  if (ref.pid > 0 && (await isOurDaemon(ref.pid, ref.exportPath))) {
    process.kill(ref.pid, 'SIGTERM');
    for (let waited = 0; pidAlive(ref.pid) && (await isOurDaemon(ref.pid, ref.exportPath)); waited += 20) {
      if (waited >= STOP_GRACE_MS) {
        process.kill(ref.pid, 'SIGKILL');
        break;
      }
      await sleep(20);
    }
  }
  await unmountFuse(runner, ref.exportPath);
  await rm(ref.exportPath, { force: true });
}
