/**
 * Reading and tidying files inside a template root on the host. Paths are guest paths ('/etc/os-release') resolved
 * component by component inside the root: absolute symlinks are re-rooted and '..' stops at the root, so a link
 * such as /etc/os-release -> /usr/lib/os-release reads the guest's file, never the host's.
 */
import { constants as fsConstants } from 'node:fs';
import { lstat, open, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VmforgeError } from '../errors.js';
import { elfArch, findKernels, osInfo, parseOsRelease, type KernelEntry, type Manifest } from './manifest.js';

const MAX_SYMLINKS = 40;

/**
 * Host path of `guestPath` inside `root`, following symlinks inside the root. With `followLast: false` the last
 * component is not followed (to remove or replace a link itself). Missing components are fine: the result is where
 * the file would be.
 */
export async function resolveInRoot(root: string, guestPath: string, opts: { followLast?: boolean } = {}): Promise<string> {
  const followLast = opts.followLast ?? true;
  let pending = guestPath.split('/').filter((c) => c && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const [comp, ...rest] = pending as [string, ...string[]];
    pending = rest;
    if (comp === '..') {
      done.pop();
      continue;
    }
    const hostPath = join(root, ...done, comp);
    const isLast = pending.length === 0;
    let st;
    try {
      st = await lstat(hostPath);
    } catch {
      if (pending.includes('..')) throw new VmforgeError('UNSAFE_PATH', `cannot resolve '${guestPath}': '..' after a missing component`);
      done.push(comp, ...pending);
      break;
    }
    if (st.isSymbolicLink() && (!isLast || followLast)) {
      if (++links > MAX_SYMLINKS) throw new VmforgeError('UNSAFE_PATH', `too many symlinks resolving '${guestPath}' in ${root}`);
      const target = await readlink(hostPath);
      if (target.startsWith('/')) done.length = 0;
      pending = [...target.split('/').filter((c) => c && c !== '.'), ...pending];
      continue;
    }
    done.push(comp);
  }
  return join(root, ...done);
}

/** Reads at most maxBytes of a guest file; undefined when it does not exist or is not a regular file. */
export async function readGuestFile(root: string, guestPath: string, maxBytes = 1024 * 1024): Promise<Buffer | undefined> {
  const p = await resolveInRoot(root, guestPath);
  try {
    const st = await lstat(p);
    if (!st.isFile()) return undefined;
    // O_NOFOLLOW: a link swapped in after resolution must not lead out of the root.
    const fh = await open(p, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    try {
      const buf = Buffer.alloc(Math.min(maxBytes, st.size));
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export async function readOsRelease(root: string): Promise<Record<string, string>> {
  for (const p of ['/etc/os-release', '/usr/lib/os-release']) {
    const buf = await readGuestFile(root, p);
    if (buf) return parseOsRelease(buf.toString('utf8'));
  }
  return {};
}

export async function listKernels(root: string): Promise<KernelEntry[]> {
  const boot = await resolveInRoot(root, '/boot');
  try {
    return findKernels(await readdir(boot));
  } catch (e) {
    if (['ENOENT', 'ENOTDIR'].includes(String((e as NodeJS.ErrnoException).code))) return [];
    throw e;
  }
}

/** Machine name of the root's userland, from the ELF header of a binary every Linux root has. */
export async function detectArch(root: string): Promise<string | undefined> {
  for (const p of ['/usr/bin/env', '/bin/sh', '/usr/bin/sh', '/sbin/init', '/usr/lib/systemd/systemd']) {
    const head = await readGuestFile(root, p, 64);
    const arch = head && elfArch(head);
    if (arch) return arch;
  }
  return undefined;
}

/** What createBundle puts in the manifest about the root itself. */
export async function inspectRoot(root: string): Promise<Pick<Manifest, 'os' | 'kernels'> & { arch: string | undefined }> {
  const [osRelease, kernels, arch] = await Promise.all([readOsRelease(root), listKernels(root), detectArch(root)]);
  return { os: osInfo(osRelease), kernels, arch };
}

/** Replaces a guest file with `content` (a symlink in its place is replaced, not followed). */
export async function writeGuestFile(root: string, guestPath: string, content: string, mode = 0o644): Promise<void> {
  const p = await resolveInRoot(root, guestPath, { followLast: false });
  await rm(p, { force: true });
  await writeFile(p, content, { mode, flag: 'wx' });
}

/** Removes a guest file or link if present; directories are left alone. */
export async function removeGuestFile(root: string, guestPath: string): Promise<boolean> {
  const p = await resolveInRoot(root, guestPath, { followLast: false });
  try {
    const st = await lstat(p);
    if (st.isDirectory()) return false;
    await rm(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** Names in a guest directory, [] when it does not exist. */
export async function listGuestDir(root: string, guestPath: string): Promise<string[]> {
  try {
    return await readdir(await resolveInRoot(root, guestPath));
  } catch (e) {
    if (['ENOENT', 'ENOTDIR'].includes(String((e as NodeJS.ErrnoException).code))) return [];
    throw e;
  }
}

export async function guestFileExists(root: string, guestPath: string): Promise<boolean> {
  try {
    await lstat(await resolveInRoot(root, guestPath));
    return true;
  } catch {
    return false;
  }
}
