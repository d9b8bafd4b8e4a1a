/**
 * createBundle: template root directory -> compressed GNU tar blob + manifest in the store, in one pass:
 * `tar | compressor` joined by an OS pipe, Node reading the compressor's output to hash, count and write it, and
 * tar's verbose listing (on its stderr) counting entries and unpacked bytes.
 */
import { realpath, stat } from 'node:fs/promises';
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
export const DEFAULT_TEMPLATE_EXCLUDES: readonly string[] = Object.freeze([
  './proc/*',
  './sys/*',
  './dev/*',
  './run/*',
  './tmp/*',
  './var/tmp/*',
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
  signal?: AbortSignal;
  onProgress?: (p: CreateProgress) => void;
}

const PROGRESS_EVERY_BYTES = 4 * 1024 * 1024;

export function tarCreateArgv(rootDir: string, excludes: readonly string[], selinux: boolean): string[] {
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
    '.',
  ];
}

export async function createBundle(runner: HostRunner, opts: CreateBundleOptions): Promise<ResolvedBundle> {
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
  if (root === '/') throw invalidInput('refusing to bundle the host root filesystem', 'pass the directory of a template root');

  const inspected = await inspectRoot(root);
  const arch = opts.arch ?? inspected.arch;
  if (!arch) throw invalidInput(`cannot tell the architecture of ${root} (no ELF /usr/bin/env or /bin/sh)`, 'pass arch explicitly');

  const selinux = await tarSupportsSelinux(runner);
  const totals = emptyTotals();
  const pipe = runner.pipeline({
    stages: [
      { argv: tarCreateArgv(root, excludes, selinux), onStderrLine: (line) => addListingLine(totals, line) },
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
  });
  await blob.commit(opts.compression);
  try {
    return await store.put(manifest, { replace: opts.replace });
  } catch (e) {
    await store.removeBlobIfUnreferenced(manifest);
    throw e;
  }
}
