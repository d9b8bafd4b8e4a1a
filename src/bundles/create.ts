/**
 * createBundle: template root directory -> compressed GNU tar blob + manifest in the store, in one pass:
 * `tar | compressor` joined by an OS pipe, Node reading the compressor's output to hash, count and write it, and
 * tar's verbose listing (on its stderr) counting entries and unpacked bytes.
 */
import { lstat, mkdtemp, realpath, rm, stat, utimes, chown, chmod, mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { conflict, invalidInput, VmforgeError } from '../errors.js';
import type { HostRunner } from '../exec/runner.js';
import { manifestSchema, validateNewBundleId, type BundleSource, type Compression, type Manifest } from './manifest.js';
import { inspectRoot } from './inspect-root.js';
import { BundleStore, type ResolvedBundle } from './store.js';
import { addListingLine, emptyTotals } from './tar-listing.js';
import { checkLevel, compressArgv, DEFAULT_LEVEL, tarSupportsSelinux } from './tools.js';

/**
 * What a template root should not carry (GNU tar --exclude patterns: shell wildcards, '*' also matches '/',
 * matched against member names, which start with './'):
 * - API filesystems and scratch space: their mount points stay (as empty directories), their contents go;
 * - apt's downloaded packages and package lists: large, stale by the time the VM boots, apt refetches them;
 * - lost+found of whatever filesystem the root was built on: mkfs makes a fresh one on the VM disk;
 * - SSH host keys: every VM must get its own; they are generated when the VM is provisioned.
 */
/** API filesystems and scratch space: the mount points stay (as empty directories), their contents go. */
export const SCRATCH_EXCLUDES: readonly string[] = Object.freeze(['./proc/*', './sys/*', './dev/*', './run/*', './tmp/*', './var/tmp/*']);

export const DEFAULT_TEMPLATE_EXCLUDES: readonly string[] = Object.freeze([
  ...SCRATCH_EXCLUDES,
  './var/cache/apt/archives/*.deb',
  './var/lib/apt/lists/*',
  'lost+found',
  './etc/ssh/ssh_host_*',
]);

export interface CreateProgress {
  /** Archive entries written so far. */
  entries: number;
  unpackedBytes: number;
  compressedBytes: number;
}

export interface CreateBundleOptions {
  rootDir: string;
  name: string;
  version: string;
  compression: Compression;
  /** Compressor level; zstd 3, gzip 6, xz 6 by default. */
  level?: number;
  /** Defaults to DEFAULT_TEMPLATE_EXCLUDES; pass [...DEFAULT_TEMPLATE_EXCLUDES, more] to extend. */
  excludes?: readonly string[];
  storeDir: string;
  /** ISO 8601 creation time, recorded in the manifest. */
  created: string;
  /** Overrides the architecture read from the root's ELF binaries. */
  arch?: string;
  source?: BundleSource;
  /** Replace an existing bundle with the same name and version instead of failing with CONFLICT. */
  replace?: boolean;
  /**
   * Member names (`./etc/machine-id`) archived as empty files with the original's owner, mode and times, when
   * they are regular files in the root; others are left as they are.
   */
  emptyFiles?: readonly string[];
  /** Allow bundling the host's own `/` (a live system). */
  allowHostRoot?: boolean;
  /**
   * A live system changes while tar reads it: accept tar's "file changed as we read it" (exit 1) and report the
   * files in `changedWhileReading` instead of failing.
   */
  tolerateChanges?: boolean;
  /** Recorded as the manifest's sourceHost; default this host's name. */
  sourceHost?: string;
  signal?: AbortSignal;
  onProgress?: (p: CreateProgress) => void;
}

const PROGRESS_EVERY_BYTES = 4 * 1024 * 1024;

/** Suffix of the empty stand-ins createBundle archives (renamed by --transform) for `emptyFiles`. */
const EMPTIED_SUFFIX = '.vmforge-emptied';

export interface EmptiedMembers {
  /** Directory holding `<member>${EMPTIED_SUFFIX}` for each member, as empty files. */
  scratchDir: string;
  /** `./etc/machine-id`, ... */
  members: readonly string[];
}

export function tarCreateArgv(rootDir: string, excludes: readonly string[], selinux: boolean, emptied?: EmptiedMembers): string[] {
  const members = emptied?.members ?? [];
  // The real file is excluded from the root's walk; its empty stand-in is archived from the scratch dir under a
  // name no exclude matches, and --transform gives it the real member name (exclusion is decided on the name
  // before the transform).
  const emptiedArgs = members.length
    ? [
        ...members.map((m) => `--exclude=${m}`),
        ...members.map((m) => `--transform=s,^${escapeRegex(m + EMPTIED_SUFFIX)}$,${m.replace(/[\\&,]/g, '\\$&')},`),
      ]
    : [];
  const tail = members.length && emptied ? [`--directory=${emptied.scratchDir}`, ...members.map((m) => m + EMPTIED_SUFFIX)] : [];
  return [
    'tar',
    '--create',
    '--file=-',
    `--directory=${rootDir}`,
    // pax headers carry xattrs/ACLs/SELinux labels. By default their names hold tar's PID and they record atime
    // and ctime: both make equal trees give different archives, and atime/ctime are never restored anyway.
    '--format=posix',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    '--one-file-system',
    '--numeric-owner',
    '--xattrs',
    '--xattrs-include=*',
    '--acls',
    ...(selinux ? ['--selinux'] : []),
    '--sparse',
    // Deterministic member order: equal trees give equal archives.
    '--sort=name',
    // The -vv listing goes to stderr (stdout is the archive); it feeds the counts. Sockets cannot be archived;
    // tar skips them, and we keep that quiet.
    '--verbose',
    '--verbose',
    '--warning=no-file-ignored',
    ...excludes.map((e) => `--exclude=${e}`),
    ...emptiedArgs,
    '.',
    ...tail,
  ];
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\,]/g, '\\$&');
}

export async function createBundle(runner: HostRunner, opts: CreateBundleOptions): Promise<ResolvedBundle & { changedWhileReading: string[] }> {
  validateNewBundleId(opts.name, opts.version);
  if (!manifestSchema.shape.created.safeParse(opts.created).success) {
    throw invalidInput(`created '${opts.created}' is not an ISO 8601 date-time`);
  }
  const level = opts.level ?? DEFAULT_LEVEL[opts.compression];
  checkLevel(opts.compression, level);
  const excludes = [...(opts.excludes ?? DEFAULT_TEMPLATE_EXCLUDES)];
  for (const e of excludes) {
    if (!e || /[\n\0]/.test(e)) throw invalidInput(`exclude pattern ${JSON.stringify(e)} is empty or contains a newline/NUL`);
  }

  const store = new BundleStore(opts.storeDir);
  if (!opts.replace && (await store.has(opts.name, opts.version))) {
    throw conflict(`bundle ${opts.name}:${opts.version} already exists`, 'choose another version, or replace it');
  }

  const root = await realpath(opts.rootDir).catch(() => {
    throw invalidInput(`template root ${opts.rootDir} does not exist`);
  });
  if (!(await stat(root)).isDirectory()) throw invalidInput(`template root ${opts.rootDir} is not a directory`);
  if (root === '/' && !opts.allowHostRoot) throw invalidInput('refusing to bundle the host root filesystem', 'pass the directory of a template root');

  const inspected = await inspectRoot(root);
  const arch = opts.arch ?? inspected.arch;
  if (!arch) throw invalidInput(`cannot tell the architecture of ${root} (no ELF /usr/bin/env or /bin/sh)`, 'pass arch explicitly');

  const selinux = await tarSupportsSelinux(runner);
  const emptied = await prepareEmptied(root, opts.emptyFiles ?? [], join(opts.storeDir, 'tmp'));
  try {
    return await archiveAndStore(runner, opts, { root, excludes, level, selinux, emptied, store, inspected, arch });
  } finally {
    if (emptied) await rm(emptied.scratchDir, { recursive: true, force: true });
  }
}

/** Files tar reported as changed, vanished or shrunk while it read them (a live root). */
const CHANGED_RE = /^tar: (.*): (file changed as we read it|File removed before we read it|File shrank by \d+ bytes.*)$/;

interface ArchiveInputs {
  root: string;
  excludes: string[];
  level: number;
  selinux: boolean;
  emptied: EmptiedMembers | undefined;
  store: BundleStore;
  inspected: Awaited<ReturnType<typeof inspectRoot>>;
  arch: string;
}

async function archiveAndStore(runner: HostRunner, opts: CreateBundleOptions, a: ArchiveInputs): Promise<ResolvedBundle & { changedWhileReading: string[] }> {
  const { root, excludes, level, selinux, emptied, store, inspected, arch } = a;
  const totals = emptyTotals();
  const changed: string[] = [];
  const pipe = runner.pipeline({
    stages: [
      {
        argv: tarCreateArgv(root, excludes, selinux, emptied),
        onStderrLine: (line) => {
          if (addListingLine(totals, line)) return true;
          const m = opts.tolerateChanges ? CHANGED_RE.exec(line) : null;
          if (m) changed.push(m[1] as string);
          return Boolean(m);
        },
        ...(opts.tolerateChanges ? { okCodes: [1] } : {}),
      },
      { argv: compressArgv(opts.compression, level) },
    ],
    stdout: 'pipe',
    signal: opts.signal,
  });
  if (!pipe.stdout) throw new VmforgeError('INTERNAL', 'pipeline has no stdout');

  let lastReport = 0;
  const report = (compressedBytes: number) =>
    opts.onProgress?.({ entries: totals.entries, unpackedBytes: totals.bytes, compressedBytes });
  const staging = store.stageBlob(pipe.stdout, {
    onBytes: (n) => {
      if (n - lastReport >= PROGRESS_EVERY_BYTES) {
        lastReport = n;
        report(n);
      }
    },
  });
  // Staging fails only on our side (disk full, ...): stop the processes, which would otherwise die of EPIPE.
  staging.catch(() => pipe.kill());
  const [staged, finished] = await Promise.allSettled([staging, pipe.done]);
  if (staged.status === 'rejected') throw staged.reason;
  if (finished.status === 'rejected') {
    await staged.value.discard();
    throw finished.reason;
  }
  const blob = staged.value;
  report(blob.bytes);

  const manifest: Manifest = manifestSchema.parse({
    schemaVersion: 1,
    name: opts.name,
    version: opts.version,
    created: opts.created,
    os: inspected.os,
    arch,
    kernels: inspected.kernels,
    unpackedBytes: totals.bytes,
    fileCount: totals.entries,
    compressedBytes: blob.bytes,
    compression: opts.compression,
    sha256: blob.sha256,
    excludes,
    ...(opts.source ? { source: opts.source } : {}),
    sourceHost: opts.sourceHost ?? hostname(),
    bootloader: inspected.bootloader,
    ...(emptied?.members.length ? { emptied: [...emptied.members] } : {}),
  });
  await blob.commit(opts.compression);
  try {
    return { ...(await store.put(manifest, { replace: opts.replace })), changedWhileReading: changed };
  } catch (e) {
    await store.removeBlobIfUnreferenced(manifest);
    throw e;
  }
}

/**
 * For each member that is a regular file in the root (no symlink on the way: tar would not descend through one
 * either), an empty stand-in with its owner, mode and times in a scratch dir. Undefined when there is none.
 */
async function prepareEmptied(root: string, members: readonly string[], scratchParent: string): Promise<EmptiedMembers | undefined> {
  const found: { member: string; st: Awaited<ReturnType<typeof lstat>> }[] = [];
  for (const member of members) {
    if (!/^\.\/[^*?[\\]+$/.test(member) || member.split('/').some((c) => c === '..')) {
      throw invalidInput(`cannot empty '${member}': give a literal member name like ./etc/machine-id`);
    }
    const parts = member.slice(2).split('/');
    let path = root;
    let st: Awaited<ReturnType<typeof lstat>> | undefined;
    for (const [i, part] of parts.entries()) {
      path = join(path, part);
      st = await lstat(path).catch(() => undefined);
      if (!st || (i < parts.length - 1 && !st.isDirectory())) {
        st = undefined;
        break;
      }
    }
    if (st?.isFile()) found.push({ member, st });
  }
  if (!found.length) return undefined;
  await mkdir(scratchParent, { recursive: true });
  const scratchDir = await mkdtemp(join(scratchParent, `emptied-${process.pid}-`));
  try {
    for (const { member, st } of found) {
      const file = join(scratchDir, member + EMPTIED_SUFFIX);
      await mkdir(join(file, '..'), { recursive: true });
      await writeFile(file, '');
      await chown(file, Number(st.uid), Number(st.gid));
      await chmod(file, Number(st.mode) & 0o7777);
      await utimes(file, st.atime, st.mtime);
    }
  } catch (e) {
    await rm(scratchDir, { recursive: true, force: true });
    throw e;
  }
  return { scratchDir, members: found.map((f) => f.member) };
}
