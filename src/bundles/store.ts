/**
 * The local bundle store:
 *
 *   <dir>/blobs/sha256/<hex>.tar.<zst|gz|xz>   compressed archives, named by the sha256 of their bytes
 *   <dir>/manifests/<name>/<version>.json       one manifest per bundle version
 *   <dir>/tmp/                                   files being written (same filesystem, so rename is atomic)
 *
 * Every write goes to tmp/, is fsynced, then renamed into place (and the directory fsynced), and a blob is in
 * place before any manifest names it: after a crash a bundle is either whole or absent, never half there.
 * Identical archives share one blob; a blob goes when the last manifest naming it is removed.
 */
import { fsyncPath } from '../exec/fsync-path.js';
import { pidAlive as isAlive } from '../exec/pid.js';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { conflict, invalidInput, notFound, VmforgeError } from '../errors.js';
import {
  COMPRESSION_EXT,
  formatBundleRef,
  LATEST,
  parseBundleRef,
  parseManifest,
  pickLatest,
  type BundleRef,
  type Compression,
  type Manifest,
} from './manifest.js';
import { writevAll } from './write-all.js';

export interface ResolvedBundle {
  manifest: Manifest;
  blobPath: string;
  manifestPath: string;
}

/** A blob written and fsynced in tmp/, not yet visible in the store. */
export interface StagedBlob {
  sha256: string;
  bytes: number;
  /** Moves it to its content address; returns that path. */
  commit(compression: Compression): Promise<string>;
  discard(): Promise<void>;
}

export interface VerifyResult {
  ok: boolean;
  ref: string;
  blobPath: string;
  expectedSha256: string;
  actualSha256: string;
  expectedBytes: number;
  actualBytes: number;
}

/** Bytes gathered per disk write in stageBlob: few syscalls, and a fixed amount of memory per upload. */
const STAGE_BATCH_BYTES = 4 * 1024 * 1024;
/** stageBlob starts a background fdatasync this often, so the final fsync does not write back the whole blob. */
const STAGE_SYNC_EVERY_BYTES = 256 * 1024 * 1024;

export const BOOTSTRAP_HINT = 'create one with: vmforge bundle bootstrap debian';

export class BundleStore {
  constructor(readonly dir: string) {}

  blobPath(sha256: string, compression: Compression): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new VmforgeError('INTERNAL', `not a sha256: ${sha256}`);
    return join(this.dir, 'blobs', 'sha256', `${sha256}.tar.${COMPRESSION_EXT[compression]}`);
  }

  manifestPath(name: string, version: string): string {
    // parseBundleRef validates both parts, so neither can leave manifests/.
    const ref = parseBundleRef(`${name}:${version}`);
    if (ref.version === LATEST) throw new VmforgeError('INTERNAL', 'manifestPath needs a concrete version');
    return join(this.dir, 'manifests', ref.name, `${ref.version}.json`);
  }

  /**
   * Streams `source` into tmp/, hashing and counting as it goes; fsynced before it resolves. The source is not
   * paused for each disk write: chunks that arrive while a write runs are gathered and go out together in the
   * next writev (one write in flight, at most STAGE_BATCH_BYTES waiting: memory stays bounded).
   */
  async stageBlob(source: Readable, opts: { onBytes?: (total: number) => void } = {}): Promise<StagedBlob> {
    const tempPath = await this.tempPath('blob');
    const fh = await open(tempPath, 'wx', 0o644);
    const hash = createHash('sha256');
    let bytes = 0;
    let written = 0;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let inflight: Promise<void> | undefined;
    let busy = false;
    let failure: unknown;
    let syncing: Promise<void> | undefined;
    let syncedAt = 0;
    const startWrite = () => {
      const bufs = batch;
      const n = batchBytes;
      batch = [];
      batchBytes = 0;
      busy = true;
      inflight = writevAll(fh, bufs).then(
        () => {
          written += n;
          busy = false;
          if (!syncing && written - syncedAt >= STAGE_SYNC_EVERY_BYTES) {
            syncedAt = written;
            syncing = fh.datasync().then(
              () => void (syncing = undefined),
              (e: unknown) => void (failure ??= e),
            );
          }
        },
        (e: unknown) => {
          failure ??= e;
        },
      );
    };
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        if (failure) throw failure;
        hash.update(chunk);
        bytes += chunk.length;
        batch.push(chunk);
        batchBytes += chunk.length;
        if (busy && batchBytes >= STAGE_BATCH_BYTES) await inflight;
        if (failure) throw failure;
        if (!busy) startWrite();
        opts.onBytes?.(bytes);
      }
      await inflight;
      if (failure) throw failure;
      if (batchBytes) startWrite();
      await inflight;
      await syncing;
      if (failure) throw failure;
      await fh.sync();
    } catch (e) {
      source.destroy();
      await inflight;
      await syncing;
      await fh.close().catch(() => undefined);
      await rm(tempPath, { force: true });
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') {
        throw new VmforgeError('INSUFFICIENT_SPACE', `no space left for a bundle in ${this.dir} (${written} bytes written)`, {
          hint: 'free space there or point the bundle store at a larger filesystem',
          cause: e,
        });
      }
      throw e;
    }
    await fh.close();
    return this.stagedHandle(tempPath, hash.digest('hex'), bytes);
  }

  /** Where files being written live (same filesystem as the store, so a rename into place is atomic). */
  get tmpDir(): string {
    return join(this.dir, 'tmp');
  }

  /**
   * Stages a file the caller wrote in tmpDir and already hashed while writing (a download): fsyncs it and hands it
   * over as a StagedBlob without copying it. The caller vouches for `sha256` and `bytes`; the size is checked.
   */
  async adoptTempFile(path: string, sha256: string, bytes: number): Promise<StagedBlob> {
    if (dirname(path) !== this.tmpDir) throw new VmforgeError('INTERNAL', `${path} is not in ${this.tmpDir}`);
    const fh = await open(path, 'r+');
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.size !== bytes) throw new VmforgeError('INTERNAL', `${path} holds ${st.size} bytes, not ${bytes}`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return this.stagedHandle(path, sha256, bytes);
  }

  private stagedHandle(tempPath: string, sha256: string, bytes: number): StagedBlob {
    let settled = false;
    return {
      sha256,
      bytes,
      commit: async (compression) => {
        if (settled) throw new VmforgeError('INTERNAL', 'staged blob already committed or discarded');
        settled = true;
        const final = this.blobPath(sha256, compression);
        await mkdir(dirname(final), { recursive: true });
        const existing = await stat(final).catch(() => undefined);
        if (existing?.size === bytes) {
          await rm(tempPath, { force: true });
        } else {
          await rename(tempPath, final);
          await fsyncPath(dirname(final));
        }
        return final;
      },
      discard: async () => {
        settled = true;
        await rm(tempPath, { force: true });
      },
    };
  }

  /**
   * Adds a manifest. With `blob` (a compressed archive file), copies it in and checks it matches the manifest's
   * sha256 and size; without, the blob must already be in the store. An existing name:version is a CONFLICT unless
   * `replace` (an identical manifest is accepted as is).
   */
  async put(manifestIn: Manifest, opts: { blob?: string; replace?: boolean } = {}): Promise<ResolvedBundle> {
    const manifest = parseManifest(manifestIn);
    const manifestPath = this.manifestPath(manifest.name, manifest.version);
    const previous = await this.readManifest(manifestPath);
    const ref = formatBundleRef(manifest);
    if (previous && !opts.replace && JSON.stringify(previous) !== JSON.stringify(manifest)) {
      throw conflict(`bundle ${ref} already exists`, `remove it first (vmforge bundle rm ${ref}) or choose another version`);
    }
    let blobPath = this.blobPath(manifest.sha256, manifest.compression);
    if (opts.blob !== undefined) {
      const staged = await this.stageBlob(createReadStream(opts.blob));
      if (staged.sha256 !== manifest.sha256 || staged.bytes !== manifest.compressedBytes) {
        await staged.discard();
        throw invalidInput(
          `${opts.blob} does not match the manifest of ${ref}: sha256 ${staged.sha256} (${staged.bytes} bytes), manifest says ${manifest.sha256} (${manifest.compressedBytes} bytes)`,
        );
      }
      blobPath = await staged.commit(manifest.compression);
    } else {
      const st = await stat(blobPath).catch(() => undefined);
      if (!st || st.size !== manifest.compressedBytes) {
        throw notFound(`the blob of ${ref} is not in the store (${blobPath})`, 'pass the archive file to put() along with the manifest');
      }
    }
    await this.writeFileAtomic(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
    if (previous && previous.sha256 !== manifest.sha256) await this.removeBlobIfUnreferenced(previous);
    return { manifest, blobPath, manifestPath };
  }

  /**
   * Adds a bundle whose blob was staged with stageBlob, only if name:version does not exist yet. Existence is
   * decided when the manifest is hard-linked into place (link(2) fails on an existing name), so of two
   * concurrent publishers of one name:version exactly one wins and the other gets CONFLICT. The staged blob is
   * always settled: committed (then removed again on failure unless another manifest names it) or discarded.
   */
  async publishStaged(manifestIn: Manifest, staged: StagedBlob): Promise<ResolvedBundle> {
    let manifest: Manifest;
    let manifestPath: string;
    try {
      manifest = parseManifest(manifestIn);
      manifestPath = this.manifestPath(manifest.name, manifest.version);
      if (staged.sha256 !== manifest.sha256 || staged.bytes !== manifest.compressedBytes) {
        throw invalidInput(
          `the data received for ${formatBundleRef(manifest)} does not match its manifest: sha256 ${staged.sha256} (${staged.bytes} bytes), manifest says ${manifest.sha256} (${manifest.compressedBytes} bytes)`,
        );
      }
      if (await this.has(manifest.name, manifest.version)) throw existsConflict(manifest);
    } catch (e) {
      await staged.discard();
      throw e;
    }
    const blobPath = await staged.commit(manifest.compression);
    try {
      await this.writeFileExclusive(manifestPath, JSON.stringify(manifest, null, 2) + '\n', () => existsConflict(manifest));
    } catch (e) {
      await this.removeBlobIfUnreferenced(manifest).catch(() => false);
      throw e;
    }
    return { manifest, blobPath, manifestPath };
  }

  /** `name` or `name:latest` is the most recently created version. The blob must be present. */
  async resolve(refIn: string | BundleRef): Promise<ResolvedBundle> {
    const ref = typeof refIn === 'string' ? parseBundleRef(refIn) : refIn;
    let manifest: Manifest | undefined;
    if (ref.version === LATEST) {
      manifest = pickLatest((await this.list()).filter((m) => m.name === ref.name));
    } else {
      manifest = await this.readManifest(this.manifestPath(ref.name, ref.version));
    }
    if (!manifest) throw notFound(`bundle ${formatBundleRef(ref)} does not exist in ${this.dir}`, await this.availableHint());
    const blobPath = this.blobPath(manifest.sha256, manifest.compression);
    if (!(await stat(blobPath).catch(() => undefined))) {
      throw notFound(
        `the archive of bundle ${formatBundleRef(manifest)} is missing (${blobPath})`,
        `remove the bundle (vmforge bundle rm ${formatBundleRef(manifest)}) and create it again`,
      );
    }
    return { manifest, blobPath, manifestPath: this.manifestPath(manifest.name, manifest.version) };
  }

  /** All bundles, by name, newest first within a name. Manifest files that do not parse are reported, not listed. */
  async list(opts: { onInvalid?: (path: string, error: Error) => void } = {}): Promise<Manifest[]> {
    const root = join(this.dir, 'manifests');
    const out: Manifest[] = [];
    for (const name of await readdirOrEmpty(root)) {
      for (const file of await readdirOrEmpty(join(root, name))) {
        if (!file.endsWith('.json') || file.startsWith('.')) continue;
        const path = join(root, name, file);
        try {
          const m = await this.readManifest(path);
          if (!m) continue;
          if (m.name !== name || `${m.version}.json` !== file) throw invalidInput(`${path} holds ${formatBundleRef(m)}`);
          out.push(m);
        } catch (e) {
          opts.onInvalid?.(path, e as Error);
        }
      }
    }
    return out.sort((a, b) => (a.name !== b.name ? (a.name < b.name ? -1 : 1) : Date.parse(b.created) - Date.parse(a.created)));
  }

  /** Bundles made by bootstrapDebian with this cache key (newest first). */
  async findByCacheKey(cacheKey: string): Promise<Manifest[]> {
    return (await this.list()).filter((m) => m.source?.kind === 'debootstrap' && m.source.cacheKey === cacheKey);
  }

  async remove(ref: string | BundleRef): Promise<{ manifest: Manifest; blobRemoved: boolean }> {
    const { manifest, manifestPath } = await this.resolveManifestOnly(ref);
    await unlink(manifestPath);
    await fsyncPath(dirname(manifestPath));
    await rmdir(dirname(manifestPath)).catch(() => undefined); // only succeeds when it was the last version
    const blobRemoved = await this.removeBlobIfUnreferenced(manifest);
    return { manifest, blobRemoved };
  }

  /** Re-hashes the blob. A mismatch is a result (ok: false), not an exception; a missing bundle is NOT_FOUND. */
  async verify(ref: string | BundleRef): Promise<VerifyResult> {
    const { manifest, blobPath } = await this.resolve(ref);
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of createReadStream(blobPath) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    const actualSha256 = hash.digest('hex');
    return {
      ok: actualSha256 === manifest.sha256 && bytes === manifest.compressedBytes,
      ref: formatBundleRef(manifest),
      blobPath,
      expectedSha256: manifest.sha256,
      actualSha256,
      expectedBytes: manifest.compressedBytes,
      actualBytes: bytes,
    };
  }

  /** Deletes temp files left by processes that no longer run (a crash mid-write). Returns how many. */
  async sweepTemp(): Promise<number> {
    let removed = 0;
    for (const f of await readdirOrEmpty(join(this.dir, 'tmp'))) {
      const pid = Number(/^[a-z]+-(\d+)-/.exec(f)?.[1]);
      if (!Number.isInteger(pid) || pid === process.pid || isAlive(pid)) continue;
      await rm(join(this.dir, 'tmp', f), { force: true, recursive: true });
      removed++;
    }
    return removed;
  }

  /** Whether name:version exists (manifest only). */
  async has(name: string, version: string): Promise<boolean> {
    return (await this.readManifest(this.manifestPath(name, version))) !== undefined;
  }

  // -------------------------------------------------------------------------------------------------------------

  private async resolveManifestOnly(refIn: string | BundleRef): Promise<{ manifest: Manifest; manifestPath: string }> {
    const ref = typeof refIn === 'string' ? parseBundleRef(refIn) : refIn;
    const manifest =
      ref.version === LATEST
        ? pickLatest((await this.list()).filter((m) => m.name === ref.name))
        : await this.readManifest(this.manifestPath(ref.name, ref.version));
    if (!manifest) throw notFound(`bundle ${formatBundleRef(ref)} does not exist in ${this.dir}`, await this.availableHint());
    return { manifest, manifestPath: this.manifestPath(manifest.name, manifest.version) };
  }

  /** Deletes the blob of `gone` unless another manifest still names it. */
  async removeBlobIfUnreferenced(gone: Pick<Manifest, 'sha256' | 'compression'>): Promise<boolean> {
    const stillUsed = (await this.list()).some((m) => m.sha256 === gone.sha256 && m.compression === gone.compression);
    if (stillUsed) return false;
    const path = this.blobPath(gone.sha256, gone.compression);
    try {
      await unlink(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    await fsyncPath(dirname(path));
    return true;
  }

  private async readManifest(path: string): Promise<Manifest | undefined> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw invalidInput(`${path} is not valid JSON: ${(e as Error).message}`);
    }
    return parseManifest(json, path);
  }

  private async availableHint(): Promise<string> {
    const all = await this.list().catch(() => [] as Manifest[]);
    if (all.length === 0) return `the store is empty; ${BOOTSTRAP_HINT}`;
    const refs = all.slice(0, 20).map(formatBundleRef);
    return `available: ${refs.join(', ')}${all.length > refs.length ? ', ...' : ''}; or ${BOOTSTRAP_HINT}`;
  }

  /** A new, empty file in tmpDir for a blob the caller writes itself (then adoptTempFile, or remove it). */
  async createTempFile(kind: string): Promise<{ path: string; fh: FileHandle }> {
    const path = await this.tempPath(kind);
    return { path, fh: await open(path, 'wx', 0o644) };
  }

  private async tempPath(kind: string): Promise<string> {
    const dir = join(this.dir, 'tmp');
    await mkdir(dir, { recursive: true });
    return join(dir, `${kind}-${process.pid}-${randomBytes(6).toString('hex')}.partial`);
  }

  /** Like writeFileAtomic, but an existing `path` is left alone and `onExists()` is thrown. */
  private async writeFileExclusive(path: string, content: string, onExists: () => Error): Promise<void> {
    const temp = await this.writeSyncedTemp(content);
    try {
      // remove() deletes a name's directory with its last version; a retry covers it vanishing between the two.
      for (let attempt = 0; ; attempt++) {
        await mkdir(dirname(path), { recursive: true });
        try {
          await link(temp, path);
          break;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'EEXIST') throw onExists();
          if (code !== 'ENOENT' || attempt >= 3) throw e;
        }
      }
    } finally {
      await rm(temp, { force: true });
    }
    await fsyncPath(dirname(path));
  }

  /** A new temp file holding `content`, fsynced: the first half of every crash-safe manifest write. */
  private async writeSyncedTemp(content: string): Promise<string> {
    const temp = await this.tempPath('manifest');
    try {
      const fh = await open(temp, 'wx', 0o644);
      try {
        await fh.writeFile(content);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (e) {
      await rm(temp, { force: true });
      throw e;
    }
    return temp;
  }

  private async writeFileAtomic(path: string, content: string): Promise<void> {
    const temp = await this.writeSyncedTemp(content);
    try {
      await mkdir(dirname(path), { recursive: true });
      await rename(temp, path);
    } catch (e) {
      await rm(temp, { force: true });
      throw e;
    }
    await fsyncPath(dirname(path));
  }
}

function existsConflict(ref: BundleRef): VmforgeError {
  const r = formatBundleRef(ref);
  return conflict(`bundle ${r} already exists`, `remove it first (vmforge bundle rm ${r}) or choose another version`);
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if (['ENOENT', 'ENOTDIR'].includes(String((e as NodeJS.ErrnoException).code))) return [];
    throw e;
  }
}

