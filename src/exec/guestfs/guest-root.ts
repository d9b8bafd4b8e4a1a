/**
 * GuestRoot: file access inside a mounted guest root whose content the template image controls.
 *
 * Every guest path is resolved component by component with lstat/readlink, the way the kernel would resolve it
 * if the guest root were '/': an absolute symlink target restarts at the guest root and '..' stops there (the
 * semantics of openat2 RESOLVE_IN_ROOT). So a link like /etc/hostname -> /etc/passwd-of-the-host, or
 * /etc -> ../../../../etc, lands inside the guest, never on the host. Writes never follow the last component: a
 * symlink there is replaced by a regular file (temp file + rename in the same directory), so the rename itself
 * cannot be redirected either.
 *
 * Limit: Node has no openat(), so a directory swapped for a symlink between our lstat and our use could still
 * redirect an operation. Nothing runs inside the guest root while vmforge edits it (the guest is not booted and
 * only root can change the mount), so the hostile part is the image's static content, which this fully covers.
 */
import { constants, type Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { VmforgeError, invalidInput, notFound } from '../../errors.js';
import type { FileEdit } from '../../core/model/spec.js';
import type { GuestFiles, GuestFilesNeeded } from '../../core/guest/current-files.js';
import { quoteForMessage } from '../../core/names.js';

/** Linux's MAXSYMLINKS: beyond this the kernel says ELOOP, and so do we. */
const MAX_SYMLINKS = 40;
const DEFAULT_MAX_READ_BYTES = 16 * 1024 * 1024;
const DEFAULT_FILE_MODE = 0o644;
const DEFAULT_DIR_MODE = 0o755;

export interface GuestRootOptions {
  /** Owner given to files, directories and links this class creates. Default 0:0 (root:root in the guest). */
  uid?: number;
  gid?: number;
  /** readText refuses files larger than this (a hostile image could ship a huge sparse /etc/hosts). */
  maxReadBytes?: number;
}

type Walk =
  /** `host` is the resolved host path; `stat` is its lstat (a symlink only when the last one was not followed). */
  | { kind: 'found'; host: string; stat: Stats }
  /** The parent resolved to a directory; the last name does not exist in it. */
  | { kind: 'missing'; host: string }
  /** A directory on the way is missing or not a directory; `at` is the resolved guest path of that component. */
  | { kind: 'no-parent'; at: string };

export class GuestRoot {
  private rootPromise: Promise<string> | undefined;
  private readonly uid: number;
  private readonly gid: number;
  private readonly maxReadBytes: number;

  constructor(
    readonly rootDir: string,
    opts: GuestRootOptions = {},
  ) {
    this.uid = opts.uid ?? 0;
    this.gid = opts.gid ?? 0;
    this.maxReadBytes = opts.maxReadBytes ?? DEFAULT_MAX_READ_BYTES;
  }

  /** Text of a file (symlinks followed inside the guest); null when it does not exist. Refuses non-UTF-8. */
  async readText(guestPath: string): Promise<string | null> {
    const w = await this.walk(guestPath, { followLast: true });
    if (w.kind !== 'found') return null;
    if (w.stat.isDirectory()) throw invalidInput(`guest path ${quoteForMessage(guestPath)} is a directory, not a file`);
    if (!w.stat.isFile()) throw specialFile(guestPath, w.stat);
    const fh = await openRegular(guestPath, w.host);
    if (!fh) return null;
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw specialFile(guestPath, st);
      if (st.size > this.maxReadBytes) {
        throw invalidInput(`guest file ${quoteForMessage(guestPath)} is ${st.size} bytes; the limit is ${this.maxReadBytes}`);
      }
      const bytes = await fh.readFile();
      try {
        return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      } catch {
        // Decoding with replacement characters and writing back would silently corrupt the file.
        throw invalidInput(`guest file ${quoteForMessage(guestPath)} is not UTF-8 text`, 'vmforge edits only UTF-8 text files');
      }
    } finally {
      await fh.close();
    }
  }

  /**
   * The first `maxBytes` bytes of a file (symlinks followed inside the guest), for probing an image (an ELF header,
   * os-release). A probe asks "is there such a file?", so anything but a regular file (missing, a directory, a FIFO,
   * a device node) is null rather than an error, and is never opened.
   */
  async readHead(guestPath: string, maxBytes: number): Promise<Buffer | null> {
    const w = await this.walk(guestPath, { followLast: true });
    if (w.kind !== 'found' || !w.stat.isFile()) return null;
    const fh = await openRegular(guestPath, w.host);
    if (!fh) return null;
    try {
      const st = await fh.stat();
      if (!st.isFile()) return null;
      const buf = Buffer.alloc(Math.min(maxBytes, st.size));
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  /** True when the path exists (symlinks followed inside the guest; a dangling link is false). */
  async exists(guestPath: string): Promise<boolean> {
    return (await this.walk(guestPath, { followLast: true })).kind === 'found';
  }

  /**
   * What is at `guestPath` itself (a symlink there is reported, not followed; parents are followed inside the
   * guest); null when it does not exist.
   */
  async entryType(guestPath: string): Promise<'file' | 'directory' | 'symlink' | 'other' | null> {
    const w = await this.walk(guestPath, { followLast: false });
    if (w.kind !== 'found') return null;
    if (w.stat.isFile()) return 'file';
    if (w.stat.isDirectory()) return 'directory';
    if (w.stat.isSymbolicLink()) return 'symlink';
    return 'other';
  }

  /** Target of the symlink at `guestPath`, verbatim; null when it is not a symlink or does not exist. */
  async readLink(guestPath: string): Promise<string | null> {
    const w = await this.walk(guestPath, { followLast: false });
    if (w.kind !== 'found' || !w.stat.isSymbolicLink()) return null;
    return fsp.readlink(w.host);
  }

  /**
   * Writes a file atomically. Mode: `mode` if given, else that of the regular file being replaced, else 0644.
   * Owner: that of the regular file being replaced, else the default (root:root). A symlink at the path is
   * replaced, never followed. The parent directory must exist.
   */
  async writeFile(guestPath: string, data: Uint8Array, mode?: number): Promise<void> {
    const { dirHost, name, existing } = await this.prepareReplace(guestPath, 'write');
    const keep = existing?.isFile() ? existing : undefined;
    const finalMode = mode ?? (keep ? keep.mode & 0o7777 : DEFAULT_FILE_MODE);
    const uid = keep ? keep.uid : this.uid;
    const gid = keep ? keep.gid : this.gid;
    await replaceAtomically(dirHost, name, async (tmp) => {
      const fh = await fsp.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        await fh.writeFile(data);
        const st = await fh.stat();
        // chown before chmod: chown clears set-id bits.
        if (st.uid !== uid || st.gid !== gid) await fh.chown(uid, gid);
        await fh.chmod(finalMode);
      } finally {
        await fh.close();
      }
    });
  }

  /** writeFile with `content` encoded as UTF-8. */
  async writeText(guestPath: string, content: string, mode?: number): Promise<void> {
    await this.writeFile(guestPath, Buffer.from(content, 'utf8'), mode);
  }

  /** Deletes a file or symlink (the link itself). Missing is success. Refuses directories. */
  async remove(guestPath: string): Promise<void> {
    if (splitGuestPath(guestPath).length === 0) throw invalidInput('cannot remove the guest root');
    const w = await this.walk(guestPath, { followLast: false });
    if (w.kind !== 'found') return;
    if (w.stat.isDirectory()) {
      throw invalidInput(`guest path ${quoteForMessage(guestPath)} is a directory`, 'remove deletes files and symlinks only');
    }
    try {
      await fsp.unlink(w.host);
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw err;
    }
  }

  /** Creates a directory and its missing parents (mode for the new ones only, default 0755). Existing is fine. */
  async mkdirp(guestPath: string, mode: number = DEFAULT_DIR_MODE): Promise<void> {
    await this.mkdirpHost(guestPath, mode);
  }

  /**
   * Copies host files into the guest directory `guestDir` (created like mkdirp), as regular files with the source's
   * mode and the default owner, `concurrency` at a time. The directory is resolved once; each target is created
   * with O_CREAT|O_EXCL (copyFile's COPYFILE_EXCL), which never follows a symlink and never opens what is there:
   * a file, symlink, FIFO or device node already at a name is unlinked first (the entry, not what it points at).
   * A directory at a name is an error. Unlike writeFile, a file is not replaced atomically: this is for bulk copies
   * into a disk being built, which is thrown away when the build fails.
   */
  async copyIntoDir(guestDir: string, files: readonly { name: string; hostPath: string }[], concurrency = 8): Promise<void> {
    for (const f of files) {
      if (f.name === '' || f.name === '.' || f.name === '..' || f.name.includes('/') || f.name.includes('\0')) {
        throw invalidInput(`file name ${quoteForMessage(f.name)} is not a plain name`);
      }
    }
    const dirHost = await this.mkdirpHost(guestDir, DEFAULT_DIR_MODE);
    const present = new Set(await fsp.readdir(dirHost));
    const chown = this.uid !== process.geteuid?.() || this.gid !== process.getegid?.();
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (!failed && next < files.length) {
        const f = files[next++] as { name: string; hostPath: string };
        const guestPath = guestOf([...componentsOf(guestDir), f.name]);
        const target = path.join(dirHost, f.name);
        if (present.has(f.name)) await unlinkNonDir(guestPath, target);
        try {
          await fsp.copyFile(f.hostPath, target, constants.COPYFILE_EXCL);
        } catch (err) {
          if (errno(err) === 'EEXIST') throw unsafe(`guest path ${quoteForMessage(guestPath)} appeared while it was being written`);
          throw err;
        }
        if (chown) await fsp.lchown(target, this.uid, this.gid);
      }
    };
    // On the first failure the other workers stop taking files, and this returns only once none is in flight:
    // the caller's undo unmounts the guest, which a copy still running would make fail with EBUSY.
    const results = await Promise.allSettled(
      Array.from({ length: Math.max(1, Math.min(concurrency, files.length)) }, () =>
        worker().catch((err: unknown) => {
          failed = true;
          throw err;
        }),
      ),
    );
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (rejected) throw rejected.reason;
  }

  /**
   * Makes `guestPath` a symlink to `target`. The target is stored verbatim and never resolved here (it means
   * something only inside the booted guest). Replaces an existing file or symlink; a no-op if already right.
   */
  async symlink(target: string, guestPath: string): Promise<void> {
    if (target === '' || target.includes('\0')) throw invalidInput(`symlink target ${quoteForMessage(target)} is not valid`);
    const { dirHost, name, existing } = await this.prepareReplace(guestPath, 'create a symlink at');
    if (existing?.isSymbolicLink() && (await fsp.readlink(path.join(dirHost, name))) === target) return;
    await replaceAtomically(dirHost, name, async (tmp) => {
      await fsp.symlink(target, tmp);
      const st = await fsp.lstat(tmp);
      if (st.uid !== this.uid || st.gid !== this.gid) await fsp.lchown(tmp, this.uid, this.gid);
    });
  }

  /** Sorted entry names of a directory (symlinks followed inside the guest); [] when it does not exist. */
  async list(guestDir: string): Promise<string[]> {
    const w = await this.walk(guestDir, { followLast: true });
    if (w.kind !== 'found') return [];
    if (!w.stat.isDirectory()) throw invalidInput(`guest path ${quoteForMessage(guestDir)} is not a directory`);
    return (await fsp.readdir(w.host)).sort();
  }

  /** Applies edits in order; returns the guest paths touched, in order. */
  async applyEdits(edits: readonly FileEdit[]): Promise<string[]> {
    const touched: string[] = [];
    for (const edit of edits) {
      switch (edit.kind) {
        case 'write':
          await this.writeText(edit.path, edit.content, edit.mode);
          break;
        case 'delete':
          await this.remove(edit.path);
          break;
        case 'mkdir':
          await this.mkdirp(edit.path, edit.mode);
          break;
        case 'symlink':
          await this.symlink(edit.target, edit.path);
          break;
      }
      touched.push(edit.path);
    }
    return touched;
  }

  /** Reads what a guest adapter asked for (see core/guest/current-files.ts). */
  async snapshot(needs: GuestFilesNeeded): Promise<GuestFiles> {
    const files: Record<string, string | null> = {};
    const dirs: Record<string, string[]> = {};
    const links: Record<string, string | null> = {};
    for (const p of needs.files) files[p] = await this.readText(p);
    for (const p of needs.dirs) dirs[p] = await this.list(p);
    for (const p of needs.links) links[p] = await this.readLink(p);
    return { files, dirs, links };
  }

  private root(): Promise<string> {
    this.rootPromise ??= (async () => {
      if (!path.isAbsolute(this.rootDir)) throw invalidInput(`guest root ${quoteForMessage(this.rootDir)} is not an absolute path`);
      let real: string;
      try {
        real = await fsp.realpath(this.rootDir);
      } catch (err) {
        if (errno(err) === 'ENOENT') throw notFound(`guest root ${quoteForMessage(this.rootDir)} does not exist`);
        throw err;
      }
      if (!(await fsp.stat(real)).isDirectory()) throw invalidInput(`guest root ${quoteForMessage(this.rootDir)} is not a directory`);
      return real;
    })();
    return this.rootPromise;
  }

  /** mkdirp, returning the resolved host path of the directory. */
  private async mkdirpHost(guestPath: string, mode: number): Promise<string> {
    const w = await this.walk(guestPath, { followLast: true, mkdirMode: mode });
    if (w.kind === 'no-parent') {
      throw invalidInput(`cannot create guest directory ${quoteForMessage(guestPath)}: ${quoteForMessage(w.at)} is not a directory`);
    }
    if (w.kind === 'missing' || !w.stat.isDirectory()) {
      throw invalidInput(`guest path ${quoteForMessage(guestPath)} exists and is not a directory`);
    }
    return w.host;
  }

  /** Resolves the parent of `guestPath` for a replacing operation; the last component is not followed. */
  private async prepareReplace(guestPath: string, verb: string): Promise<{ dirHost: string; name: string; existing: Stats | null }> {
    if (splitGuestPath(guestPath).length === 0) throw invalidInput(`cannot ${verb} the guest root`);
    const w = await this.walk(guestPath, { followLast: false });
    if (w.kind === 'no-parent') {
      throw notFound(
        `cannot ${verb} guest path ${quoteForMessage(guestPath)}: ${quoteForMessage(w.at)} is missing or not a directory`,
        'create the parent directory first (a mkdir edit)',
      );
    }
    if (w.kind === 'found') {
      if (w.stat.isDirectory()) throw invalidInput(`cannot ${verb} guest path ${quoteForMessage(guestPath)}: it is a directory`);
      if (!w.stat.isFile() && !w.stat.isSymbolicLink()) throw specialFile(guestPath, w.stat);
    }
    // With the last component unfollowed and no '..' allowed in guestPath, host ends in guestPath's last name.
    return { dirHost: path.dirname(w.host), name: path.basename(w.host), existing: w.kind === 'found' ? w.stat : null };
  }

  /**
   * The resolver. Keeps the resolved location as a stack of verified names below the root: '..' pops (never past
   * the root), an absolute link target empties the stack, a relative one is spliced in where the link was.
   * With `mkdirMode`, missing directories (and a missing last component) are created on the way.
   */
  private async walk(guestPath: string, opts: { followLast: boolean; mkdirMode?: number }): Promise<Walk> {
    const root = await this.root();
    const pending = splitGuestPath(guestPath);
    const stack: string[] = [];
    let links = 0;
    let lastStat: Stats | undefined;
    while (pending.length > 0) {
      const name = pending.shift()!;
      if (name === '..') {
        stack.pop();
        lastStat = undefined;
        continue;
      }
      const isLast = pending.length === 0;
      const host = path.join(root, ...stack, name);
      let st = await lstatOrNull(host);
      if (st === null) {
        if (opts.mkdirMode === undefined) {
          return isLast ? { kind: 'missing', host } : { kind: 'no-parent', at: guestOf([...stack, name]) };
        }
        st = await this.makeDir(host, opts.mkdirMode);
      }
      if (st.isSymbolicLink() && (!isLast || opts.followLast)) {
        if (++links > MAX_SYMLINKS) {
          throw unsafe(`too many levels of symbolic links resolving guest path ${quoteForMessage(guestPath)}`, 'the image has a symlink loop');
        }
        const target = await fsp.readlink(host);
        if (target.startsWith('/')) stack.length = 0;
        pending.unshift(...componentsOf(target));
        lastStat = undefined;
        continue;
      }
      if (!isLast && !st.isDirectory()) return { kind: 'no-parent', at: guestOf([...stack, name]) };
      stack.push(name);
      lastStat = st;
    }
    const host = path.join(root, ...stack);
    return { kind: 'found', host, stat: lastStat ?? (await fsp.lstat(host)) };
  }

  private async makeDir(host: string, mode: number): Promise<Stats> {
    try {
      await fsp.mkdir(host);
    } catch (err) {
      if (errno(err) === 'EEXIST') return fsp.lstat(host);
      throw err;
    }
    const st = await fsp.lstat(host);
    if (st.uid !== this.uid || st.gid !== this.gid) await fsp.lchown(host, this.uid, this.gid);
    // mkdir's mode is filtered by the umask; chmod is exact.
    await fsp.chmod(host, mode);
    return fsp.lstat(host);
  }
}

/** Validates a caller's guest path and splits it. '..' is refused outright: no caller needs it. */
function splitGuestPath(guestPath: string): string[] {
  if (!guestPath.startsWith('/')) {
    throw unsafe(`guest path ${quoteForMessage(guestPath)} is not absolute`, "guest paths start with '/', as seen inside the guest");
  }
  if (guestPath.includes('\0')) throw unsafe(`guest path ${quoteForMessage(guestPath)} contains a NUL byte`);
  const parts = componentsOf(guestPath);
  if (parts.includes('..')) throw unsafe(`guest path ${quoteForMessage(guestPath)} contains '..'`, 'give a normalized absolute path');
  return parts;
}

function componentsOf(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

function guestOf(parts: readonly string[]): string {
  return `/${parts.join('/')}`;
}

async function replaceAtomically(dirHost: string, name: string, create: (tmpHost: string) => Promise<void>): Promise<void> {
  // A fresh random name (created with O_EXCL or symlink(), which both refuse to reuse a name) in the same
  // directory, so rename() is atomic and never crosses a mount.
  const tmp = path.join(dirHost, `.vmforge-${randomBytes(8).toString('hex')}.tmp`);
  try {
    await create(tmp);
    await fsp.rename(tmp, path.join(dirHost, name));
  } catch (err) {
    await fsp.unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/**
 * Opens a file the walk found, without following a symlink that replaced it since (O_NOFOLLOW) and without blocking
 * on a FIFO that replaced it (O_NONBLOCK); null when it has gone. The caller re-checks the type on the handle.
 */
async function openRegular(guestPath: string, host: string): Promise<fsp.FileHandle | null> {
  try {
    return await fsp.open(host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if (errno(err) === 'ENOENT') return null;
    if (errno(err) === 'ELOOP') throw unsafe(`guest path ${quoteForMessage(guestPath)} changed into a symlink while being read`);
    throw err;
  }
}

/** Removes the entry at `host` (never what a symlink there points at); missing is fine, a directory is an error. */
async function unlinkNonDir(guestPath: string, host: string): Promise<void> {
  try {
    await fsp.unlink(host);
  } catch (err) {
    if (errno(err) === 'ENOENT') return;
    if ((errno(err) === 'EISDIR' || errno(err) === 'EPERM') && (await lstatOrNull(host))?.isDirectory()) {
      throw invalidInput(`cannot write guest path ${quoteForMessage(guestPath)}: it is a directory`);
    }
    throw err;
  }
}

async function lstatOrNull(host: string): Promise<Stats | null> {
  try {
    return await fsp.lstat(host);
  } catch (err) {
    if (errno(err) === 'ENOENT') return null;
    throw err;
  }
}

function errno(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function unsafe(message: string, hint?: string): VmforgeError {
  return new VmforgeError('UNSAFE_PATH', message, hint === undefined ? {} : { hint });
}

function specialFile(guestPath: string, st: Stats): VmforgeError {
  const what = st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : st.isBlockDevice() || st.isCharacterDevice() ? 'a device node' : 'not a regular file';
  return unsafe(`guest path ${quoteForMessage(guestPath)} is ${what}; refusing to touch it`);
}
