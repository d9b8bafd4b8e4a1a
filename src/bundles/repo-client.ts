/**
 * Client of the bundle repository (docs/repository.md): list, manifest, publish (PUT streamed from the blob
 * file) and pull (download resumed with Range after interruptions, verified, then moved into the local store).
 *
 * Memory stays flat whatever the blob size: uploads are a file stream piped into the socket, downloads are
 * read into a few reused buffers and written in batches (batch-appender.ts; bytes count as received only once
 * they are on disk, so the running hash always matches the partial file), and no body larger than a manifest
 * list is ever held. Over plain http the blob body bypasses Node's HTTP client (raw-get.ts), whose fresh
 * buffer per socket read cost more CPU than hashing and writing the bytes.
 *
 * A pull writes `<store>/tmp/resume-<sha256>.partial`; it survives an interrupted run (Ctrl-C, a lost
 * connection after the retries), and the next pull of the same blob continues it. A lock file beside it keeps
 * two pulls of one blob from writing the same file.
 */
import { pidAlive as isAlive } from '../exec/pid.js';
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, rm, stat, mkdir, type FileHandle } from 'node:fs/promises';
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { conflict, VmforgeError } from '../errors.js';
import { formatBundleRef, parseBundleRef, parseManifest, type BundleRef, type Manifest } from './manifest.js';
import {
  backoffMs,
  blobParts,
  checkRepoUrl,
  downloadRequestHeaders,
  encodeManifestHeader,
  httpError,
  isRetryable,
  isRetryableStatus,
  parseListBody,
  repoUrl,
  resumeDecision,
  type RepoOperation,
} from './repo-http.js';
import type { BundleStore, ResolvedBundle } from './store.js';
import { BatchAppender, type WriteState } from './batch-appender.js';
import { rawGet } from './raw-get.js';
import { rawUpgradePut } from './raw-put.js';

export interface TransferProgress {
  phase: 'upload' | 'download' | 'verify';
  /** Bytes of the blob done so far (for a resumed download, including what was already on disk). */
  bytes: number;
  total: number;
}

export interface TransferOptions {
  signal?: AbortSignal;
  onProgress?: (p: TransferProgress) => void;
  /** One line per retry, resume or restart, for the user. */
  onNotice?: (message: string) => void;
}

export interface RepoClientOptions {
  /** Attempts after a connection failure that made no progress (default 4: 0.5 + 1 + 2 + 4 s of waiting). */
  retries?: number;
  /** First retry delay, doubled each time (default 500 ms). */
  retryBaseMs?: number;
  /** A connection with no byte either way for this long is dropped and retried (default 60 s). */
  idleTimeoutMs?: number;
  /** Publish over `Upgrade: vmforge-blob` when the URL is plain http (default true; false: always a plain PUT). */
  upgradeUploads?: boolean;
  /** Write pulled blobs with O_DIRECT where the filesystem takes it (default false; see directIoWanted()). */
  directIo?: boolean;
}

export interface PublishResult {
  ref: string;
  bytes: number;
  /** The repository already had this name:version with the same content; nothing was sent. */
  alreadyPresent: boolean;
  attempts: number;
}

export interface PullResult extends ResolvedBundle {
  ref: string;
  /** The local store already had it; nothing was fetched. */
  alreadyPresent: boolean;
  /** Bytes fetched over the network in this run (less than the blob when a previous run's partial was reused). */
  bytesFetched: number;
  /** Bytes found on disk from an earlier, interrupted pull. */
  resumedFrom: number;
  attempts: number;
  /** The bytes fetched in this run were written with O_DIRECT (asked for, and the filesystem took it). */
  directIo: boolean;
}

/** Largest JSON body (list, manifest, error) read into memory. */
const MAX_JSON_BYTES = 32 * 1024 * 1024;
/** Without an answer to `Expect: 100-continue` in this time, the body is sent anyway (a server or proxy that ignores it). */
const CONTINUE_FALLBACK_MS = 3000;
const PROGRESS_EVERY_BYTES = 8 * 1024 * 1024;
const READ_CHUNK = 1024 * 1024;

/** A blob response, from rawGet or from Node's HTTP client. */
interface BlobResponse {
  status: number;
  headers: Record<string, string | undefined>;
  readText(limit: number): Promise<string>;
  readBody(onData: (chunk: Buffer) => void | Promise<void>): Promise<void>;
  close(): void;
}

export class RepoClient {
  readonly url: string;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  private readonly idleTimeoutMs: number;
  private readonly upgradeUploads: boolean;
  private readonly directIo: boolean;

  constructor(
    url: string,
    private readonly token?: string,
    opts: RepoClientOptions = {},
  ) {
    this.url = checkRepoUrl(url);
    this.retries = opts.retries ?? 4;
    this.retryBaseMs = opts.retryBaseMs ?? 500;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    this.upgradeUploads = opts.upgradeUploads ?? true;
    this.directIo = opts.directIo ?? false;
  }

  async list(filter: { name?: string; os?: string } = {}, opts: { signal?: AbortSignal; onInvalid?: (e: Error) => void } = {}): Promise<Manifest[]> {
    const json = await this.getJson(repoUrl(this.url, ['bundles'], filter), 'list', undefined, opts.signal);
    return parseListBody(json, opts.onInvalid);
  }

  /** The manifest of `ref` in the repository (`latest` resolves there). */
  async manifest(refIn: string | BundleRef, opts: { signal?: AbortSignal } = {}): Promise<Manifest> {
    const ref = typeof refIn === 'string' ? parseBundleRef(refIn) : refIn;
    const json = await this.getJson(repoUrl(this.url, ['bundles', ref.name, ref.version, 'manifest']), 'manifest', ref, opts.signal);
    const m = parseManifest(json, `the repository's manifest of ${formatBundleRef(ref)}`);
    if (m.name !== ref.name || (ref.version !== 'latest' && m.version !== ref.version)) {
      throw new VmforgeError('INTERNAL', `asked the repository for ${formatBundleRef(ref)}, got the manifest of ${formatBundleRef(m)}`);
    }
    return m;
  }

  /** The repository's manifest of `ref`, or undefined when it has no such bundle. */
  async findManifest(ref: BundleRef, opts: { signal?: AbortSignal } = {}): Promise<Manifest | undefined> {
    try {
      return await this.manifest(ref, opts);
    } catch (e) {
      if (e instanceof VmforgeError && e.code === 'NOT_FOUND') return undefined;
      throw e;
    }
  }

  /**
   * Uploads a bundle of the local store. Publishing what the repository already has (same name, version and
   * sha256) is a no-op; the same name:version with other content is CONFLICT.
   */
  async publish(entry: ResolvedBundle, opts: TransferOptions = {}): Promise<PublishResult> {
    const { manifest, blobPath } = entry;
    const ref = formatBundleRef(manifest);
    const size = (await stat(blobPath)).size;
    if (size !== manifest.compressedBytes) {
      throw new VmforgeError('DIGEST_MISMATCH', `the local blob of ${ref} has ${size} bytes; its manifest says ${manifest.compressedBytes}`, {
        hint: `check it: vmforge bundle verify ${ref}`,
      });
    }
    const existing = await this.findManifest(manifest, opts);
    if (existing) return this.samePublished(existing, manifest, 0);

    const url = repoUrl(this.url, ['bundles', manifest.name, manifest.version]);
    const headers: OutgoingHttpHeaders = {
      'content-type': 'application/octet-stream',
      'content-length': String(size),
      'x-vmforge-sha256': manifest.sha256,
      'x-vmforge-manifest': encodeManifestHeader(manifest),
      expect: '100-continue',
    };
    let failures = 0;
    // Over plain http the blob goes after an `Upgrade: vmforge-blob` (raw-put.ts); https, and repositories
    // without that path, get the plain PUT.
    let upgrade = url.protocol === 'http:' && this.upgradeUploads;
    for (let attempt = 1; ; attempt++) {
      // No hashing here: the manifest names the sha256, and the repository checks it. Only a 422 makes us look.
      let sent = 0;
      let lastReport = 0;
      const report = (n: number) => {
        if (n - lastReport >= PROGRESS_EVERY_BYTES || n === size) {
          lastReport = n;
          opts.onProgress?.({ phase: 'upload', bytes: n, total: size });
        }
      };
      const meter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          sent += chunk.length;
          report(sent);
          cb(null, chunk);
        },
      });
      let status: number;
      let text: string;
      try {
        if (upgrade) {
          const h: Record<string, string> = { 'user-agent': 'vmforge', 'x-vmforge-sha256': manifest.sha256, 'x-vmforge-manifest': encodeManifestHeader(manifest) };
          if (this.token) h.authorization = `Bearer ${this.token}`;
          const r = await rawUpgradePut(url, h, { path: blobPath, bytes: size }, { signal: opts.signal, idleTimeoutMs: this.idleTimeoutMs, onSent: (n) => report(n) });
          sent = r.sent;
          if (!r.upgraded && r.status === 411) {
            // A repository without the upgrade path takes the request as a PUT without a length: use that.
            upgrade = false;
            attempt--;
            continue;
          }
          status = r.status;
          text = r.text;
        } else {
          const file = createReadStream(blobPath, { highWaterMark: READ_CHUNK });
          file.on('error', (e) => meter.destroy(e));
          try {
            const res = await this.exchange('PUT', url, headers, opts.signal, file.pipe(meter));
            status = res.statusCode ?? 0;
            text = await readBody(res, MAX_JSON_BYTES);
          } finally {
            file.destroy();
          }
        }
      } catch (e) {
        if (!isRetryable(e)) throw this.wrap(e, 'publish');
        // An upload restarts from byte 0: the repository keeps nothing of a broken one.
        failures = await this.retryOrThrow(e, failures, 'publish', opts);
        continue;
      }
      if (status === 200 || status === 201) {
        if (sent !== size) throw new VmforgeError('INTERNAL', `the repository accepted ${ref} after ${sent} of ${size} bytes`);
        return { ref, bytes: size, alreadyPresent: false, attempts: attempt };
      }
      if (status === 409) {
        // Our own earlier attempt may have landed before its answer was lost.
        const there = await this.findManifest(manifest, opts);
        if (there) return this.samePublished(there, manifest, attempt);
      }
      if (status === 422 && sent === size && (await fileSha256(blobPath)) !== manifest.sha256) {
        throw new VmforgeError('DIGEST_MISMATCH', `the local blob of ${ref} does not match its manifest (sha256 differs)`, {
          hint: `check it: vmforge bundle verify ${ref}; then create or pull it again`,
        });
      }
      const err = httpError(status, text, { op: 'publish', url: this.url, ref: manifest, bytes: size });
      if (!isRetryableStatus(status)) throw err;
      failures = await this.retryOrThrow(err, failures, 'publish', opts);
    }
  }

  /**
   * Downloads `ref` into `store`: resumes a partial file left by an earlier attempt or run, verifies size and
   * sha256 against the repository's manifest, and only then makes it visible in the store (atomically). A
   * bundle the store already holds with the same content is not fetched again.
   */
  async pull(refIn: string | BundleRef, store: BundleStore, opts: TransferOptions = {}): Promise<PullResult> {
    const ref0 = typeof refIn === 'string' ? parseBundleRef(refIn) : refIn;
    const manifest = await this.manifest(ref0, opts);
    const ref = formatBundleRef(manifest);
    const local = await localCopy(store, manifest);
    if (local) return { ...local, ref, alreadyPresent: true, bytesFetched: 0, resumedFrom: 0, attempts: 0, directIo: false };
    // The same bytes under another name or version: blobs are content-addressed (and were verified when stored).
    const blobStat = await stat(store.blobPath(manifest.sha256, manifest.compression)).catch(() => undefined);
    if (blobStat?.size === manifest.compressedBytes) {
      return { ...(await store.put(manifest)), ref, alreadyPresent: false, bytesFetched: 0, resumedFrom: 0, attempts: 0, directIo: false };
    }

    await mkdir(store.tmpDir, { recursive: true });
    const partial = join(store.tmpDir, `resume-${manifest.sha256}.partial`);
    const release = await lockPartial(`${partial}.lock`, ref);
    try {
      const dl = await this.download(manifest, partial, opts);
      const staged = await store.adoptTempFile(partial, manifest.sha256, manifest.compressedBytes);
      const resolved = await store.publishStaged(manifest, staged);
      return { ...resolved, ref, alreadyPresent: false, ...dl };
    } finally {
      await release();
    }
  }

  // -------------------------------------------------------------------------------------------------------------

  private samePublished(there: Manifest, mine: Manifest, attempts: number): PublishResult {
    const ref = formatBundleRef(mine);
    if (there.sha256 !== mine.sha256) {
      throw conflict(
        `bundle ${ref} already exists in the repository at ${this.url} with other content (sha256 ${there.sha256.slice(0, 12)}…, here ${mine.sha256.slice(0, 12)}…)`,
        'publish it under another version, or delete that one from the repository first',
      );
    }
    return { ref, bytes: mine.compressedBytes, alreadyPresent: true, attempts };
  }

  /** Fills `partial` with the verified blob; returns what it took. */
  private async download(
    manifest: Manifest,
    partial: string,
    opts: TransferOptions,
  ): Promise<{ bytesFetched: number; resumedFrom: number; attempts: number; directIo: boolean }> {
    const ref = formatBundleRef(manifest);
    const expected = { sha256: manifest.sha256, bytes: manifest.compressedBytes };
    const url = repoUrl(this.url, blobParts(manifest));
    const fh = await open(partial, 'a+');
    try {
      // `w.hash` always covers exactly the first `w.hashed` bytes of the file (see appendBody).
      const w: WriteState = { hash: createHash('sha256'), hashed: (await fh.stat()).size, fetched: 0 };
      if (w.hashed > expected.bytes) await restart(fh, w);
      if (w.hashed > 0) {
        // A partial from an earlier run: hash what is there, then continue the hash over the rest.
        opts.onNotice?.(`resuming ${ref} at byte ${w.hashed} of ${expected.bytes} (left by an earlier pull)`);
        opts.onProgress?.({ phase: 'verify', bytes: 0, total: w.hashed });
        await hashFilePrefix(partial, w.hashed, w.hash);
      }
      const resumedFrom = w.hashed;
      let oldBytes = w.hashed > 0;
      let failures = 0;
      let attempts = 0;
      const writer = { directIo: false };
      for (;;) {
        if (w.hashed < expected.bytes) {
          attempts++;
          const before = w.hashed;
          try {
            await this.downloadOnce(url, partial, fh, w, expected, manifest, opts, writer);
          } catch (e) {
            if (!isRetryable(e)) throw this.wrap(e, 'download');
            // Bytes written but not hashed (a write cut short) go: the file must match the hash.
            if ((await fh.stat()).size !== w.hashed) await fh.truncate(w.hashed);
            failures = await this.retryOrThrow(e, w.hashed > before ? 0 : failures, 'download', opts, `${ref} from byte ${w.hashed}`);
            continue;
          }
          if (w.restarted) oldBytes = false;
          w.restarted = false;
          continue;
        }
        const actual = w.hash.digest('hex');
        if (actual === expected.sha256) {
          await fh.sync();
          return { bytesFetched: w.fetched, resumedFrom, attempts, directIo: writer.directIo };
        }
        await restart(fh, w);
        if (oldBytes) {
          // The bytes kept from an earlier run may be the bad ones: one clean download settles it.
          opts.onNotice?.(`${ref}: sha256 mismatch after resuming; downloading it whole once more`);
          oldBytes = false;
          continue;
        }
        throw new VmforgeError('DIGEST_MISMATCH', `the blob of ${ref} from ${this.url} has sha256 ${actual}; its manifest says ${expected.sha256}. Nothing was stored`, {
          hint: 'the repository copy may be damaged: check it there (vmforge bundle verify on the repository host)',
        });
      }
    } catch (e) {
      // A verified-bad file is worthless; an interrupted one stays for the next pull to resume.
      if (e instanceof VmforgeError && e.code === 'DIGEST_MISMATCH') await rm(partial, { force: true });
      throw e;
    } finally {
      await fh.close();
    }
  }

  /**
   * One GET of the blob from byte `w.hashed`; appends what arrives (`writer.directIo`: whether with O_DIRECT).
   * Connection failures throw (retryable).
   */
  private async downloadOnce(
    url: URL,
    partial: string,
    fh: FileHandle,
    w: WriteState,
    expected: { sha256: string; bytes: number },
    manifest: Manifest,
    opts: TransferOptions,
    writer: { directIo: boolean },
  ): Promise<void> {
    const ref = formatBundleRef(manifest);
    const res = await this.getBlob(url, downloadRequestHeaders(w.hashed, expected.sha256), opts.signal);
    try {
      const status = res.status;
      if (status !== 200 && status !== 206 && status !== 416) {
        throw httpError(status, await res.readText(MAX_JSON_BYTES), { op: 'download', url: this.url, ref: manifest });
      }
      const d = resumeDecision({ status, headers: res.headers, have: w.hashed, expected, what: ref });
      switch (d.kind) {
        case 'error':
          throw d.error;
        case 'complete':
          return;
        case 'discard':
          opts.onNotice?.(`the repository cannot continue ${ref} from byte ${w.hashed}; starting over`);
          await restart(fh, w);
          return;
        case 'restart':
          if (w.hashed > 0) {
            opts.onNotice?.(`the repository sent all of ${ref} instead of the rest; starting over`);
            await restart(fh, w);
          }
          break;
        case 'append':
          break;
      }
      let lastReport = w.hashed;
      const appender = await BatchAppender.open(
        partial,
        fh,
        w,
        expected.bytes,
        () => {
          if (w.hashed - lastReport >= PROGRESS_EVERY_BYTES) {
            lastReport = w.hashed;
            opts.onProgress?.({ phase: 'download', bytes: w.hashed, total: expected.bytes });
          }
        },
        { directIo: this.directIo },
      );
      writer.directIo = appender.directIO;
      try {
        await res.readBody((chunk) => (appender.push(chunk) ? undefined : appender.ready()));
      } finally {
        // What arrived before a cut is kept (the next attempt resumes after it); a write error wins over a cut.
        await appender.finish();
      }
      if (w.hashed < expected.bytes) {
        throw Object.assign(new Error(`the connection ended after byte ${w.hashed} of ${expected.bytes}`), { code: 'VMFORGE_SHORT_BODY' });
      }
      opts.onProgress?.({ phase: 'download', bytes: w.hashed, total: expected.bytes });
    } finally {
      res.close();
    }
  }

  /**
   * A blob GET. Over plain http the body is read by rawGet (reused buffers, see raw-get.ts); a response it does
   * not handle (no Content-Length), and https, go through Node's HTTP client.
   */
  private async getBlob(url: URL, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<BlobResponse> {
    if (url.protocol === 'http:') {
      const h: Record<string, string> = { ...headers, 'user-agent': 'vmforge' };
      if (this.token) h.authorization = `Bearer ${this.token}`;
      const raw = await rawGet(url, h, { signal, idleTimeoutMs: this.idleTimeoutMs });
      if (raw.length !== undefined) return raw;
      raw.close();
    }
    const res = await this.exchange('GET', url, headers, signal);
    return {
      status: res.statusCode ?? 0,
      headers: res.headers as Record<string, string | undefined>,
      readText: (limit) => readBody(res, limit),
      readBody: async (onData) => {
        for await (const chunk of res as AsyncIterable<Buffer>) await onData(chunk);
      },
      close: () => res.destroy(),
    };
  }

  /** Sleeps before the next attempt, or throws `e` when `failures` attempts in a row made no progress. */
  private async retryOrThrow(e: unknown, failures: number, op: RepoOperation, opts: TransferOptions, where?: string): Promise<number> {
    const cancelled = () => this.wrap(opts.signal?.reason ?? e, op);
    if (opts.signal?.aborted) throw cancelled();
    if (failures >= this.retries) {
      const err = this.wrap(e, op);
      throw new VmforgeError(err.code, `${err.message} (gave up after ${failures + 1} attempts without progress)`, {
        hint: op === 'download' ? 'run the same pull again later: it resumes where this one stopped' : err.hint,
        cause: e,
      });
    }
    const delay = backoffMs(failures, this.retryBaseMs);
    opts.onNotice?.(`${describeFailure(e)}; retrying${where ? ` ${where}` : ''} in ${(delay / 1000).toFixed(1)} s`);
    await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : undefined).catch(() => undefined);
    if (opts.signal?.aborted) throw cancelled();
    return failures + 1;
  }

  private async getJson(url: URL, op: RepoOperation, ref: BundleRef | undefined, signal: AbortSignal | undefined): Promise<unknown> {
    let failures = 0;
    for (;;) {
      try {
        const res = await this.exchange('GET', url, { accept: 'application/json' }, signal);
        const text = await readBody(res, MAX_JSON_BYTES);
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) throw httpError(status, text, { op, url: this.url, ...(ref ? { ref } : {}) });
        try {
          return JSON.parse(text) as unknown;
        } catch {
          throw new VmforgeError('INTERNAL', `the repository at ${this.url} answered ${url.pathname} with something that is not JSON`, {
            hint: 'check the repository URL (repository.url or --repo)',
          });
        }
      } catch (e) {
        if (!isRetryable(e)) throw this.wrap(e, op);
        failures = await this.retryOrThrow(e, failures, op, signal ? { signal } : {});
      }
    }
  }

  /**
   * One HTTP request. With a body, `Expect: 100-continue` lets the repository refuse (auth, size, conflict)
   * before a byte is sent; the body then goes out on `continue`, or after a short wait for servers that ignore it.
   * Resolves with the response; errors before a response reject (after one, they are the response's business).
   */
  private exchange(method: string, url: URL, headers: OutgoingHttpHeaders, signal: AbortSignal | undefined, body?: Readable): Promise<IncomingMessage> {
    const mod = url.protocol === 'https:' ? https : http;
    const h: OutgoingHttpHeaders = { ...headers, 'user-agent': 'vmforge' };
    if (this.token) h.authorization = `Bearer ${this.token}`;
    if (!body) delete h.expect;
    return new Promise<IncomingMessage>((resolve, reject) => {
      let answered = false;
      let started = false;
      const req = mod.request(url, { method, headers: h, agent: false, ...(signal ? { signal } : {}) });
      const startBody = () => {
        if (started || !body || answered) return;
        started = true;
        clearTimeout(fallback);
        body.on('error', (e) => req.destroy(e));
        body.pipe(req);
      };
      const fallback = body ? setTimeout(startBody, CONTINUE_FALLBACK_MS) : undefined;
      req.setTimeout(this.idleTimeoutMs, () => req.destroy(Object.assign(new Error(`no data from ${url.host} for ${this.idleTimeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
      req.on('continue', startBody);
      req.on('response', (res) => {
        answered = true;
        clearTimeout(fallback);
        if (body) {
          // An early answer (a refusal) ends the upload: stop reading the file.
          body.unpipe(req);
          body.destroy();
        }
        res.on('error', () => undefined);
        resolve(res);
      });
      req.on('error', (e) => {
        clearTimeout(fallback);
        body?.destroy();
        if (!answered) reject(e);
      });
      // With a body, the headers go out now (Node would hold them until the first body write, and the server
      // waits for them before it says 100 Continue).
      if (body) req.flushHeaders();
      else req.end();
    });
  }

  private wrap(e: unknown, op: RepoOperation): VmforgeError {
    if (e instanceof VmforgeError) return e;
    const name = (e as { name?: unknown } | null)?.name;
    if (name === 'AbortError' || (e instanceof Error && /^SIG[A-Z]+$/.test(e.message))) {
      return new VmforgeError('CANCELLED', `${op} was interrupted${op === 'download' ? '; the next pull resumes where it stopped' : ''}`);
    }
    if (isRetryable(e)) {
      return new VmforgeError('UNREACHABLE', `cannot reach the bundle repository at ${this.url}: ${describeFailure(e)}`, {
        hint: 'check repository.url (or --repo) and that the repository server runs there',
        cause: e,
      });
    }
    return new VmforgeError('INTERNAL', `${op} from ${this.url} failed: ${(e as Error).message ?? String(e)}`, { cause: e });
  }
}

/** The local bundle when the store has this exact one (same sha256); CONFLICT when it has other content under the name. */
async function localCopy(store: BundleStore, m: Manifest): Promise<ResolvedBundle | undefined> {
  if (!(await store.has(m.name, m.version))) return undefined;
  const local = await store.resolve(m);
  if (local.manifest.sha256 !== m.sha256) {
    throw conflict(
      `bundle ${formatBundleRef(m)} exists locally with other content (sha256 ${local.manifest.sha256.slice(0, 12)}…, repository ${m.sha256.slice(0, 12)}…)`,
      `remove the local one first (vmforge bundle rm ${formatBundleRef(m)})`,
    );
  }
  return local;
}

async function restart(fh: FileHandle, w: WriteState): Promise<void> {
  await fh.truncate(0);
  w.hash = createHash('sha256');
  w.hashed = 0;
  w.restarted = true;
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK }) as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest('hex');
}

async function hashFilePrefix(path: string, bytes: number, hash: Hash): Promise<void> {
  if (bytes === 0) return;
  for await (const chunk of createReadStream(path, { start: 0, end: bytes - 1, highWaterMark: READ_CHUNK }) as AsyncIterable<Buffer>) hash.update(chunk);
}

async function readBody(res: IncomingMessage, limit: number): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > limit) {
      res.destroy();
      throw new VmforgeError('INTERNAL', `a repository answer exceeded ${limit} bytes`);
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Takes `<partial>.lock` for this process; a lock whose process is gone is taken over. */
async function lockPartial(lockPath: string, ref: string): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(lockPath, 'wx', 0o644);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return () => rm(lockPath, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw conflict(`another vmforge (pid ${pid}) is pulling ${ref} into this store`, 'wait for it to finish');
      }
      await rm(lockPath, { force: true });
    }
  }
  throw conflict(`cannot lock ${lockPath}`, 'another pull of the same bundle may be starting; try again');
}


function describeFailure(e: unknown): string {
  if (e instanceof VmforgeError) return e.message;
  const code = (e as { code?: unknown } | null)?.code;
  const msg = (e as Error | null)?.message ?? String(e);
  return typeof code === 'string' && !msg.includes(code) ? `${msg} (${code})` : msg;
}
