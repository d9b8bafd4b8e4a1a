/**
 * The fast upload path (docs/repository.md, "Upload over Upgrade"): `PUT /v1/bundles/:name/:version` with
 * `Connection: Upgrade`, `Upgrade: vmforge-blob` and the length in `X-Vmforge-Length`. Node's HTTP server hands
 * such a request over as an 'upgrade' event with the raw socket, its parser detached; every check of the plain
 * PUT runs on the head, and only then does the server answer `101 Switching Protocols`. The client then sends
 * exactly that many bytes, and the server ends the exchange with an ordinary HTTP response (201 + manifest, or
 * an error body) and closes the connection.
 *
 * Why: Node's HTTP parser hands each ≤ 64 KiB body chunk to JavaScript in a fresh buffer, and on the test host
 * the page faults of those allocations made the server the bottleneck of a publish (docs/performance.md). Here
 * the socket is read with net's `onread` into one reused buffer, and the bytes go through the same batched,
 * hashed writer as a pull (batch-appender.ts), then the store's fsync, digest check and exclusive publish.
 */
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { BatchAppender, type WriteState } from '../../bundles/batch-appender.js';
import type { StagedBlob } from '../../bundles/store.js';
import { checkAuth, type RepoToken } from './auth.js';
import { describeError, HttpError } from './http-errors.js';
import { refFromParams } from './params.js';
import type { RepoContext } from './server.js';
import { checkUpload, parseLength } from './upload-checks.js';

export const UPGRADE_PROTOCOL = 'vmforge-blob';
export const LENGTH_HEADER = 'x-vmforge-length';

const READ_BYTES = 1024 * 1024;

export interface UpgradeDeps extends RepoContext {
  tokens: readonly RepoToken[];
  anonymousRead: boolean;
  idleMs: number;
  /** Write the received blob with O_DIRECT where the filesystem takes it. */
  directIo: boolean;
}

/** Serves fast uploads on `server`; returns a function that cuts the ones in flight (they store nothing). */
export function handleUploadUpgrades(server: Server, deps: UpgradeDeps): () => void {
  const active = new Set<net.Socket>();
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node's HTTP server hands over net.Sockets (TLSSocket is one too); anything else is not ours to serve.
    if (!(socket instanceof net.Socket)) socket.destroy();
    else if ((req.headers.upgrade ?? '').trim().toLowerCase() === UPGRADE_PROTOCOL) void serveUpgrade(deps, req, socket, head, active);
    else handBack(server, req, socket, head);
  });
  return () => {
    for (const s of active) s.destroy();
  };
}

async function serveUpgrade(deps: UpgradeDeps, req: IncomingMessage, oldSocket: net.Socket, head: Buffer, active: Set<net.Socket>): Promise<void> {
  const t0 = performance.now();
  const url = req.url ?? '/';
  let tokenName: string | null = null;
  let io: net.Socket = oldSocket;
  const log = (status: number) =>
    deps.log.info({ method: req.method, url, status, token: tokenName, ms: Math.round(performance.now() - t0), upgrade: UPGRADE_PROTOCOL }, 'request');
  // No byte of a body is taken before the checks pass; a client that sends one anyway is cut off at the answer.
  oldSocket.on('error', () => undefined);
  active.add(oldSocket);
  oldSocket.once('close', () => active.delete(oldSocket));
  let staged: StagedBlob | undefined;
  try {
    const m = /^\/v1\/bundles\/([^/?]+)\/([^/?]+)\/?(?:\?.*)?$/.exec(url);
    if (req.method !== 'PUT' || !m) throw new HttpError('NOT_FOUND', `no such endpoint for an upgrade: ${req.method ?? ''} ${url.split('?')[0] ?? ''}`);
    const auth = checkAuth(deps.tokens, req.headers.authorization, 'write', deps.anonymousRead);
    if (!auth.ok) throw Object.assign(new HttpError(auth.code, auth.message), { authenticate: auth.status === 401 });
    tokenName = auth.tokenName;
    const ref = refFromParams({ name: decodePart(m[1] as string), version: decodePart(m[2] as string) }, { allowLatest: false });
    if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
      throw new HttpError('INVALID_INPUT', `an upgraded upload announces its length in X-Vmforge-Length, with no Content-Length or Transfer-Encoding`);
    }
    const declared = parseLength(req.headers[LENGTH_HEADER], 'X-Vmforge-Length');
    const { manifest, sha256, refText } = await checkUpload(deps, ref, declared, 'X-Vmforge-Length', req.headers);
    if (head.length > 0) throw new HttpError('INVALID_INPUT', 'body bytes arrived before 101 Switching Protocols');

    const writer = { directIo: false };
    staged = await receive(deps, oldSocket, declared, writer, (sock) => {
      io = sock;
      active.add(sock);
      sock.once('close', () => active.delete(sock));
    });
    if (staged.bytes !== declared || staged.sha256 !== sha256) {
      throw new HttpError(
        'DIGEST_MISMATCH',
        `received ${staged.bytes} bytes with sha256 ${staged.sha256}; expected ${declared} bytes with sha256 ${sha256}. Nothing was stored`,
      );
    }
    const s = staged;
    const published = await deps.serialized(() => deps.store.publishStaged(manifest, s));
    staged = undefined;
    // directIo: whether bundles.directIo (or VMFORGE_DIRECT_IO) took effect on this store's filesystem.
    deps.log.info({ bundle: refText, bytes: s.bytes, ms: Math.round(performance.now() - t0), directIo: writer.directIo }, 'bundle published');
    const location = `/v1/bundles/${encodeURIComponent(ref.name)}/${encodeURIComponent(ref.version)}/manifest`;
    answer(io, 201, published.manifest, { location });
    log(201);
  } catch (e) {
    await staged?.discard().catch(() => undefined);
    const d = describeError(e);
    if (d.internal) deps.log.error({ method: req.method, url, token: tokenName, err: { message: (e as Error).message, stack: (e as Error).stack } }, 'request failed');
    if (e instanceof Cut) {
      deps.log.warn({ url, token: tokenName, reason: e.message }, 'upload abandoned by the client; nothing stored');
      io.destroy();
      log(499);
      return;
    }
    const extra: Record<string, string> = (e as { authenticate?: boolean }).authenticate ? { 'www-authenticate': 'Bearer realm="vmforge"' } : {};
    answer(io, d.status, d.body, extra);
    log(d.status);
  }
}

/** The connection went away (or stalled past the idle timeout) before the whole body arrived. */
class Cut extends Error {}

/**
 * A socket of its own over the connection's handle, reading into one reused buffer (net's `onread`) and handing
 * each read to `onData` (false: stop reading until resume()). The HTTP server's socket object stays, without a
 * handle, until the new one closes, so the server still counts the connection (a graceful close waits for the
 * upload). Anything but a plain TCP socket (TLS, say) is read with 'data' events instead.
 */
function takeOver(old: net.Socket, onData: (chunk: Buffer) => boolean): net.Socket {
  const handle = (old as { _handle?: unknown })._handle;
  if ((old as { encrypted?: boolean }).encrypted || handle === null || handle === undefined || old.readableLength > 0) {
    old.pause();
    old.on('data', (chunk: Buffer) => {
      if (!onData(chunk)) old.pause();
    });
    return old;
  }
  old.setTimeout(0);
  const sock = new net.Socket({
    handle,
    pauseOnCreate: true,
    readable: true,
    writable: true,
    onread: { buffer: Buffer.allocUnsafe(READ_BYTES), callback: (n: number, buf: Buffer) => onData(buf.subarray(0, n)) },
  } as net.SocketConstructorOpts);
  (old as unknown as { _handle: unknown })._handle = null;
  sock.once('close', () => old.destroy());
  return sock;
}

/**
 * Takes the connection over, sends 101, then takes exactly `length` bytes into a hashed, fsynced temp file.
 * Returns the socket to answer on, and the staged blob (or the error that ended the body); `writer.directIo` says
 * whether it was written with O_DIRECT.
 */
async function receive(
  deps: UpgradeDeps,
  old: net.Socket,
  length: number,
  writer: { directIo: boolean },
  onSocket: (io: net.Socket) => void,
): Promise<StagedBlob> {
  const { path, fh } = await deps.store.createTempFile('blob');
  const w: WriteState = { hash: createHash('sha256'), hashed: 0, fetched: 0 };
  let appender: BatchAppender | undefined;
  let received = 0;
  try {
    const a = await BatchAppender.open(path, fh, w, length, () => undefined, { directIo: deps.directIo });
    appender = a;
    writer.directIo = a.directIO;
    await new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (e?: unknown) => {
        if (done) return;
        done = true;
        io.setTimeout(0);
        if (e) reject(e);
        else resolve();
      };
      const take = (chunk: Buffer): boolean => {
        if (done) return false;
        const part = chunk.subarray(0, Math.min(chunk.length, length - received));
        received += part.length;
        let more: boolean;
        try {
          more = a.push(part);
        } catch (e) {
          finish(e);
          return false;
        }
        if (received >= length) {
          finish();
          return false;
        }
        if (!more) {
          a.ready().then(() => io.resume(), finish);
          return false;
        }
        return true;
      };
      const io = takeOver(old, take);
      onSocket(io);
      io.setTimeout(deps.idleMs, () => io.destroy(new Cut(`no data for ${deps.idleMs / 1000} s after ${received} of ${length} bytes`)));
      io.on('error', (e) => finish(e instanceof Cut ? e : new Cut(`${(e as Error).message} after ${received} of ${length} bytes`)));
      io.on('close', () => finish(new Cut(`the connection closed after ${received} of ${length} bytes`)));
      io.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${UPGRADE_PROTOCOL}\r\n\r\n`);
      if (length === 0) finish();
      else io.resume();
    });
    await a.finish();
    await fh.close();
    return await deps.store.adoptTempFile(path, w.hash.digest('hex'), w.hashed);
  } catch (e) {
    await appender?.finish().catch(() => undefined);
    await fh.close().catch(() => undefined);
    await rm(path, { force: true });
    throw e;
  }
}

/** A complete HTTP response on a connection that is then closed. */
function answer(io: net.Socket, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (io.destroyed || !io.writable) return;
  const text = JSON.stringify(body);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(text)}`,
    'connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  io.end(`${lines.join('\r\n')}\r\n\r\n${text}`);
  // A client that neither reads nor closes must not hold the connection.
  io.setTimeout(10_000, () => io.destroy());
}

/**
 * Any other upgrade (curl's `Upgrade: h2c`, a WebSocket probe) is served as the plain request it also is: its
 * head, without the upgrade headers, goes back in front of the socket, and the socket back to the HTTP server
 * as if it had just connected.
 */
function handBack(server: Server, req: IncomingMessage, socket: net.Socket, head: Buffer): void {
  const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}`];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = (raw[i] as string).toLowerCase();
    if (k === 'upgrade' || k === 'connection' || k === 'http2-settings') continue;
    lines.push(`${raw[i] as string}: ${raw[i + 1] as string}`);
  }
  socket.unshift(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), head]));
  server.emit('connection', socket);
}

function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError('INVALID_INPUT', `bad URL encoding: ${part}`);
  }
}
