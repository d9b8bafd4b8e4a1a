/** Mounting guest filesystems: idempotent mount/umount, mount state read from /proc/self/mountinfo. */
import { readFile, realpath } from 'node:fs/promises';
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

/** Mounts `device` on `target`; already mounted there is success, something else mounted there is a conflict. */
export async function mount(runner: CommandRunner, input: MountInput): Promise<MountRef> {
  const target = await canonical(input.target);
  const source = await canonical(input.device);
  const cur = await findMount(target);
  if (cur) {
    if (cur.source === source || cur.source === input.device) return { target, source };
    throw conflict(`${target} already has ${cur.source} mounted`, `unmount it first: umount ${target}`);
  }
  const argv = ['mount'];
  if (input.fsType) argv.push('-t', input.fsType);
  if (input.options && input.options.length > 0) argv.push('-o', input.options.join(','));
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
