/** Mounting guest filesystems: idempotent mount/umount, mount state read from /proc/self/mountinfo. */
import { chmod, mkdir, readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { conflict, VmforgeError } from '../../errors.js';
import type { CommandRunner } from '../runner.js';

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
  options: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses /proc/self/mountinfo (proc(5)): fields 5 and 6 are the mount point and options; fstype and source follow ' - '. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    const mountPoint = fields[4];
    if (sep < 0 || mountPoint === undefined) continue;
    out.push({
      mountPoint: unescapeMountField(mountPoint),
      options: fields[5] ?? '',
      fsType: fields[sep + 1] ?? '',
      source: unescapeMountField(fields[sep + 2] ?? ''),
    });
  }
  return out;
}

async function canonical(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return path;
  }
}

/** The topmost mount at `target`, or null. */
export async function findMount(target: string, mountinfoPath = '/proc/self/mountinfo'): Promise<MountEntry | null> {
  const want = await canonical(target);
  const entries = parseMountinfo(await readFile(mountinfoPath, 'utf8')).filter((e) => e.mountPoint === want);
  return entries.at(-1) ?? null;
}

export async function isMounted(target: string): Promise<boolean> {
  return (await findMount(target)) !== null;
}

/** Undo data for mount. */
export interface MountRef {
  target: string;
  source: string;
}

export interface MountInput {
  device: string;
  target: string;
  fsType?: string;
  options?: string[];
}

/**
 * Every guest filesystem is untrusted on the host: its setuid files must not raise privileges, its device nodes
 * must not open host devices, and nothing in it runs on the host (the GRUB install and the edits only read and
 * write files), so these always go with whatever the caller asks for.
 */
export const GUEST_MOUNT_OPTIONS = ['nosuid', 'nodev', 'noexec'] as const;

/** The options a guest mount gets: the caller's, then GUEST_MOUNT_OPTIONS (last, so nothing can undo them). */
export function guestMountOptions(options: readonly string[] = []): string[] {
  const undoing = new Set(['suid', 'dev', 'exec', 'defaults', 'user', 'users', 'owner', 'group']);
  return [...options.filter((o) => !undoing.has(o) && !(GUEST_MOUNT_OPTIONS as readonly string[]).includes(o)), ...GUEST_MOUNT_OPTIONS];
}

/**
 * `<runDir>/mnt`, where guest filesystems are mounted: made if missing and forced to 0700 every time (mkdir's mode
 * applies only to a directory it creates), so no other user can reach a guest file through it.
 */
export async function privateMountRoot(runDir: string): Promise<string> {
  const dir = join(runDir, 'mnt');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  return dir;
}

/**
 * Mounts `device` on `target` with GUEST_MOUNT_OPTIONS; already mounted there is success (remounted with those
 * options if it lacks any), something else mounted there is a conflict.
 */
export async function mount(runner: CommandRunner, input: MountInput): Promise<MountRef> {
  const target = await canonical(input.target);
  const source = await canonical(input.device);
  const cur = await findMount(target);
  if (cur) {
    if (cur.source === source || cur.source === input.device) {
      const have = new Set(cur.options.split(','));
      if (!GUEST_MOUNT_OPTIONS.every((o) => have.has(o))) {
        await runner.run(['mount', '-o', ['remount', ...GUEST_MOUNT_OPTIONS].join(','), target], { timeoutMs: 120_000 });
      }
      return { target, source };
    }
    throw conflict(`${target} already has ${cur.source} mounted`, `unmount it first: umount ${target}`);
  }
  const argv = ['mount'];
  if (input.fsType) argv.push('-t', input.fsType);
  argv.push('-o', guestMountOptions(input.options).join(','));
  argv.push(input.device, target);
  await runner.run(argv, { timeoutMs: 120_000 });
  return { target, source };
}

/** Unmounts `ref.target` if something is mounted there; 'gone' when nothing was. */
export async function umount(runner: CommandRunner, ref: MountRef | string): Promise<'unmounted' | 'gone'> {
  const target = await canonical(typeof ref === 'string' ? ref : ref.target);
  const cur = await findMount(target);
  if (!cur) return 'gone';
  if (typeof ref !== 'string' && cur.source !== ref.source) return 'gone';
  try {
    await runner.run(['umount', target], { timeoutMs: 120_000 });
  } catch (e) {
    if (e instanceof VmforgeError && e.code === 'COMMAND_FAILED' && /not mounted|no mount point/i.test(e.message)) return 'gone';
    throw e;
  }
  return 'unmounted';
}
