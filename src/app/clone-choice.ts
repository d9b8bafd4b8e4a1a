/**
 * Which clone strategy a build uses: the one asked for (--clone, else config storage.clone) when this host
 * supports it; 'auto' takes the first supported of qcow2, reflink, off.
 */
import { access, constants } from 'node:fs/promises';
import type { CloneSetting, CloneStrategy } from '../core/plan/golden-plan.js';
import { invalidInput, VmforgeError } from '../errors.js';
import { which } from '../exec/host-tools.js';
import { supportsReflink } from '../exec/tools/reflink.js';
import type { AppContext } from './context.js';

const SETTINGS: readonly CloneSetting[] = ['auto', 'qcow2', 'reflink', 'off'];

export function parseCloneSetting(text: string): CloneSetting {
  if (!(SETTINGS as readonly string[]).includes(text)) throw invalidInput(`--clone '${text}' is not understood`, 'use auto, qcow2, reflink or off');
  return text as CloneSetting;
}

/** Why qcow2 cannot be used here, or null when it can (also `host check`'s precondition for its FUSE export). */
export async function qcow2Missing(): Promise<string | null> {
  for (const tool of ['qemu-img', 'qemu-storage-daemon']) if (!which(tool)) return `${tool} is not installed (apt-get install qemu-utils qemu-system-common)`;
  const fuse = await access('/dev/fuse', constants.R_OK | constants.W_OK).then(() => true, () => false);
  return fuse ? null : '/dev/fuse is missing (modprobe fuse)';
}

async function reflinkMissing(ctx: AppContext): Promise<string | null> {
  const dir = ctx.config.storage.dir;
  if (!(await access(dir).then(() => true, () => false))) return `${dir} does not exist yet`;
  return (await supportsReflink(ctx.runner, dir)) ? null : `${dir} cannot share extents (not xfs with reflink=1 or btrfs)`;
}

export async function chooseCloneStrategy(ctx: AppContext, requested: CloneSetting): Promise<{ strategy: CloneStrategy | null; skipped: string[] }> {
  if (requested === 'off') return { strategy: null, skipped: [] };
  if (requested !== 'auto') {
    const why = requested === 'qcow2' ? await qcow2Missing() : await reflinkMissing(ctx);
    if (why) throw new VmforgeError('MISSING_TOOL', `--clone ${requested} cannot be used here: ${why}`, { hint: "use --clone auto (falls back) or --clone off (cold build)" });
    return { strategy: requested, skipped: [] };
  }
  const skipped: string[] = [];
  const q = await qcow2Missing();
  if (!q) return { strategy: 'qcow2', skipped };
  skipped.push(`qcow2: ${q}`);
  const r = await reflinkMissing(ctx);
  if (!r) return { strategy: 'reflink', skipped };
  skipped.push(`reflink: ${r}`);
  return { strategy: null, skipped };
}
