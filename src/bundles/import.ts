/**
 * importBundle: a root filesystem archive made elsewhere (`tar -C ROOT -czpf FILE .`, .tar.zst, .tar.xz) -> a
 * bundle in the store, the file kept as it is (its bytes become the blob). Three reads of the file, each
 * streamed: (1) `decompress | tar -tvv` counts entries and unpacked bytes, hashes the file and notes the few
 * paths that matter (release files, /boot, bootloader markers); (2) `decompress | tar -x` of only those members
 * into a scratch dir, where the OS and architecture are read through GuestRoot; (3) the copy into the store,
 * hashed again, which must give the same sha256 as (1).
 */
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { invalidInput, notFound, VmforgeError } from '../errors.js';
import { GuestRoot } from '../exec/guestfs/guest-root.js';
import type { HostRunner } from '../exec/runner.js';
import { ARCHIVE_HEAD_BYTES, requireSupportedCompression } from './archive-format.js';
import { detectArch, readReleaseFiles } from './inspect-root.js';
import {
  ALL_BOOTLOADER_PROBE_PATHS,
  bundleNameSchema,
  detectBootloader,
  detectOs,
  findKernels,
  manifestSchema,
  RELEASE_FILE_PATHS,
  validateNewBundleId,
  type Compression,
  type Manifest,
} from './manifest.js';
import { BundleStore, type ResolvedBundle } from './store.js';
import { addListingLine, emptyTotals, parseListingEntry, type ListingEntry } from './tar-listing.js';
import { decompressArgv } from './tools.js';
import { hashingMeter } from './hash-meter.js';

export interface ImportProgress {
  phase: 'inspect' | 'probe' | 'store';
  bytes: number;
  total: number;
}

export interface ImportBundleOptions {
  file: string;
  /** Default: the file's name without its extensions, when that is a valid bundle name; else `<os id>-<version>`. */
  name?: string;
  /** Default: `<yyyymmdd of created>-<first 8 hex digits of the sha256>`. */
  version?: string;
  storeDir: string;
  /** ISO 8601 creation time, recorded in the manifest. */
  created: string;
  /** Overrides the architecture read from the archive's ELF binaries. */
  arch?: string;
  sourceHost?: string;
  signal?: AbortSignal;
  onProgress?: (p: ImportProgress) => void;
}

/** Binaries whose ELF header tells the architecture (as in inspect-root's detectArch). */
const ARCH_PROBES = ['/usr/bin/env', '/bin/env', '/bin/sh', '/usr/bin/sh', '/bin/dash', '/usr/bin/dash', '/bin/bash', '/usr/bin/bash', '/sbin/init', '/usr/lib/systemd/systemd'];
const PROGRESS_EVERY_BYTES = 8 * 1024 * 1024;

interface Listing {
  entries: number;
  unpackedBytes: number;
  sha256: string;
  bytes: number;
  /** Probe paths present (normalized, no leading '/'), with their listing entry and raw member name. */
  found: Map<string, { entry: ListingEntry; member: string }>;
  bootNames: string[];
  hasEtc: boolean;
}

export async function importBundle(runner: HostRunner, opts: ImportBundleOptions): Promise<ResolvedBundle> {
  if (!manifestSchema.shape.created.safeParse(opts.created).success) throw invalidInput(`created '${opts.created}' is not an ISO 8601 date-time`);
  const st = await stat(opts.file).catch(() => undefined);
  if (!st) throw notFound(`${opts.file} does not exist`);
  if (!st.isFile()) throw invalidInput(`${opts.file} is not a regular file`);
  const compression = requireSupportedCompression(await readHead(opts.file), opts.file);
  if (opts.name !== undefined && opts.version !== undefined) validateNewBundleId(opts.name, opts.version);

  const listing = await listArchive(runner, opts, compression, st.size);
  if (!listing.hasEtc) {
    throw invalidInput(`${opts.file} does not look like a root filesystem: it has no etc/ at its top level`, 'make the archive from inside the root: tar -C ROOT --numeric-owner -czpf FILE .');
  }

  const store = new BundleStore(opts.storeDir);
  await mkdir(store.tmpDir, { recursive: true });
  const scratch = await mkdtemp(join(store.tmpDir, `import-${process.pid}-`));
  let probed: { os: Manifest['os']; arch: string | undefined };
  try {
    probed = await probeMembers(runner, opts, compression, listing, scratch);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const arch = opts.arch ?? probed.arch;
  if (!arch) throw invalidInput(`cannot tell the architecture of ${opts.file} (no ELF /usr/bin/env or /bin/sh in it)`, 'pass --arch x86_64 (or the right one)');

  const name = opts.name ?? defaultName(opts.file, probed.os);
  const version = opts.version ?? `${opts.created.slice(0, 10).replace(/-/g, '')}-${listing.sha256.slice(0, 8)}`;
  validateNewBundleId(name, version);
  if (await store.has(name, version)) throw new VmforgeError('CONFLICT', `bundle ${name}:${version} already exists`, { hint: 'choose another --version, or remove that one first' });

  const manifest: Manifest = manifestSchema.parse({
    schemaVersion: 1,
    name,
    version,
    created: opts.created,
    os: probed.os,
    arch,
    kernels: findKernels(listing.bootNames),
    unpackedBytes: listing.unpackedBytes,
    fileCount: listing.entries,
    compressedBytes: listing.bytes,
    compression,
    sha256: listing.sha256,
    excludes: [],
    source: { kind: 'import', file: basename(opts.file) },
    sourceHost: opts.sourceHost ?? hostname(),
    bootloader: detectBootloader((p) => listing.found.has(p.slice(1))),
  });

  let lastReport = 0;
  const staged = await store.stageBlob(createReadStream(opts.file, { highWaterMark: 1024 * 1024 }), {
    onBytes: (n) => {
      if (n - lastReport >= PROGRESS_EVERY_BYTES) {
        lastReport = n;
        opts.onProgress?.({ phase: 'store', bytes: n, total: listing.bytes });
      }
    },
  });
  if (staged.sha256 !== listing.sha256 || staged.bytes !== listing.bytes) {
    await staged.discard();
    throw invalidInput(`${opts.file} changed while it was imported`, 'import it again once nothing writes to it');
  }
  opts.onProgress?.({ phase: 'store', bytes: staged.bytes, total: listing.bytes });
  return store.publishStaged(manifest, staged);
}

async function readHead(file: string): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(ARCHIVE_HEAD_BYTES);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

const PROBE_PATHS = new Set<string>(
  [...Object.values(RELEASE_FILE_PATHS).flat(), ...ALL_BOOTLOADER_PROBE_PATHS, ...ARCH_PROBES].map((p) => p.slice(1)),
);

/** Pass 1: one read of the file, hashed, through `decompress | tar -tvv`. */
async function listArchive(runner: HostRunner, opts: ImportBundleOptions, compression: Compression, total: number): Promise<Listing> {
  const meter = hashingMeter((bytes) => opts.onProgress?.({ phase: 'inspect', bytes, total }), PROGRESS_EVERY_BYTES);
  const file = createReadStream(opts.file, { highWaterMark: 1024 * 1024 });
  let readError: unknown;
  file.on('error', (e) => {
    readError = e;
    meter.stream.destroy(e);
  });
  file.pipe(meter.stream);

  const totals = emptyTotals();
  const found: Listing['found'] = new Map();
  const bootNames: string[] = [];
  let hasEtc = false;
  const pipe = runner.pipeline({
    stages: [{ argv: decompressArgv(compression) }, { argv: ['tar', '--list', '--file=-', '--verbose', '--verbose', '--numeric-owner'] }],
    stdin: meter.stream,
    stdout: 'pipe',
    signal: opts.signal,
  });
  if (!pipe.stdout) throw new VmforgeError('INTERNAL', 'pipeline has no stdout');
  const lines = createInterface({ input: pipe.stdout, crlfDelay: Infinity });
  const reading = (async () => {
    for await (const line of lines) {
      if (!addListingLine(totals, line)) continue;
      const entry = parseListingEntry(line);
      if (!entry) continue;
      if (entry.path === 'etc' || entry.path.startsWith('etc/')) hasEtc = true;
      if (PROBE_PATHS.has(entry.path) && !found.has(entry.path)) found.set(entry.path, { entry, member: memberName(line, entry) });
      const m = /^boot\/([^/]+)$/.exec(entry.path);
      if (m) bootNames.push(m[1] as string);
    }
  })();
  try {
    await Promise.all([pipe.done, reading]);
  } catch (e) {
    pipe.kill();
    throw readError ?? corrupt(opts.file, e);
  } finally {
    file.destroy();
  }
  if (readError) throw readError;
  const bytes = meter.bytes();
  opts.onProgress?.({ phase: 'inspect', bytes, total });
  return { entries: totals.entries, unpackedBytes: totals.bytes, sha256: meter.digest(), bytes, found, bootNames, hasEtc };
}

/** Pass 2: extract only the probe members (and hard link targets they need) into `scratch`, then read them. */
async function probeMembers(
  runner: HostRunner,
  opts: ImportBundleOptions,
  compression: Compression,
  listing: Listing,
  scratch: string,
): Promise<{ os: Manifest['os']; arch: string | undefined }> {
  const members = new Set<string>();
  for (const { entry, member } of listing.found.values()) {
    if (entry.type === 'd') continue;
    members.add(member);
    // A hard link is extracted by linking to its target, which must be extracted too (it comes first in the archive).
    if (entry.type === 'h' && entry.linkTarget !== undefined) {
      const prefix = member.startsWith('./') ? './' : member.startsWith('/') ? '/' : '';
      members.add(prefix + entry.linkTarget);
    }
  }
  if (members.size > 0) {
    opts.onProgress?.({ phase: 'probe', bytes: 0, total: listing.bytes });
    const file = createReadStream(opts.file, { highWaterMark: 1024 * 1024 });
    try {
      await runner.pipeline({
        stages: [
          { argv: decompressArgv(compression) },
          {
            argv: ['tar', '--extract', '--file=-', `--directory=${scratch}`, '--no-same-owner', '--no-same-permissions', '--no-wildcards', '--', ...members],
          },
        ],
        stdin: file,
        stdout: 'ignore',
        signal: opts.signal,
      }).done;
    } catch (e) {
      throw corrupt(opts.file, e);
    } finally {
      file.destroy();
    }
  }
  const guest = new GuestRoot(scratch);
  return { os: detectOs(await readReleaseFiles(guest)), arch: await detectArch(guest) };
}

/** The member name as tar wrote it (what `tar -x NAME` matches): the listing's name before normalization. */
function memberName(line: string, entry: ListingEntry): string {
  const m = /^\S+\s+\S+\s+\S+\s+\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)? (.*)$/.exec(line);
  let name = m?.[1] ?? entry.path;
  const sep = entry.type === 'l' ? ' -> ' : entry.type === 'h' ? ' link to ' : undefined;
  if (sep && name.includes(sep)) name = name.slice(0, name.indexOf(sep));
  return name;
}

function corrupt(file: string, e: unknown): unknown {
  if (e instanceof VmforgeError && e.code === 'COMMAND_FAILED') {
    return invalidInput(`${file} is not a readable compressed tar archive: ${e.message}`, 'check the file (was it copied whole?)');
  }
  return e;
}

/** `rootfs.tar.gz` -> `rootfs`; a name that is not a valid bundle name falls back to `<os id>-<version id>`. */
export function defaultName(file: string, os: Manifest['os']): string {
  const stem = basename(file)
    .replace(/\.(tar\.(gz|zst|zstd|xz)|tgz|tzst|txz)$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 63);
  if (bundleNameSchema.safeParse(stem).success) return stem;
  const fallback = `${os.id}-${os.versionId || 'unknown'}`.toLowerCase().replace(/[^a-z0-9._-]+/g, '-');
  return bundleNameSchema.safeParse(fallback).success ? fallback : 'imported';
}
