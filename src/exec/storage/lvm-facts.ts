/**
 * Reads what an LVM plan needs from the host (vgs, and lvs for a thin pool) before anything is created, so
 * a missing VG or too little free space fails the build while nothing exists yet.
 */
import { VmforgeError } from '../../errors.js';
import { parseThinPoolLvsOutput, parseVgsOutput, thinPoolLvsArgv, vgsArgv, type LvmStorageSpec } from '../../core/storage/lvm-plan.js';
import type { LvmFacts } from '../../core/plan/storage-plan.js';
import { which } from '../host-tools.js';
import type { CommandRunner } from '../runner.js';

/** lvm2's default extent size; what a dry run assumes when it cannot ask vgs. */
const DEFAULT_EXTENT_BYTES = 4 * 1024 * 1024;
export const LVM_TOOLS = ['vgs', 'lvs', 'lvcreate', 'lvremove'] as const;

export async function readLvmFacts(runner: CommandRunner, storage: LvmStorageSpec, opts: { dryRun: boolean }): Promise<LvmFacts> {
  const missing = LVM_TOOLS.filter((t) => !which(t));
  if (missing.length) {
    if (opts.dryRun) return { extentBytes: DEFAULT_EXTENT_BYTES, note: `${missing.join(', ')} not found on this host: free space not checked, 4 MiB extents assumed` };
    throw new VmforgeError('MISSING_TOOL', `storage lvm:${storage.vg}${storage.thinPool ? `/${storage.thinPool}` : ''} needs LVM, but ${missing.join(', ')} is not installed on this host`, {
      hint: 'install lvm2 (apt-get install lvm2) and create the volume group, or build with --storage file',
    });
  }
  const vg = parseVgsOutput(await runLvm(runner, vgsArgv(storage.vg), `volume group ${storage.vg}`), storage.vg);
  if (!storage.thinPool) return { vgFreeBytes: vg.freeBytes, extentBytes: vg.extentBytes };
  const pool = parseThinPoolLvsOutput(await runLvm(runner, thinPoolLvsArgv(storage.vg, storage.thinPool), `thin pool ${storage.vg}/${storage.thinPool}`), storage.vg, storage.thinPool);
  return { vgFreeBytes: vg.freeBytes, extentBytes: vg.extentBytes, poolFreeBytes: pool.freeBytes };
}

async function runLvm(runner: CommandRunner, argv: string[], what: string): Promise<string> {
  try {
    return (await runner.run(argv, { timeoutMs: 60_000 })).stdout;
  } catch (e) {
    if (e instanceof VmforgeError && e.code === 'COMMAND_FAILED' && /not found|No such|does not exist|Failed to find/i.test(e.message)) {
      throw new VmforgeError('NOT_FOUND', `LVM ${what} not found (${argv.join(' ')})`, {
        hint: 'check the name with `vgs` / `lvs`, or build with --storage file',
        cause: e,
      });
    }
    throw e;
  }
}

/** Runs one lvcreate/lvremove argv from the plan. lvremove of a volume already gone is success (undo, destroy). */
export async function runLvmArgv(runner: CommandRunner, argv: string[], signal?: AbortSignal): Promise<void> {
  try {
    await runner.run(argv, { timeoutMs: 120_000, ...(signal ? { signal } : {}) });
  } catch (e) {
    if (argv[0] === 'lvremove' && e instanceof VmforgeError && e.code === 'COMMAND_FAILED' && /Failed to find logical volume|not found/i.test(e.message)) return;
    throw e;
  }
}
