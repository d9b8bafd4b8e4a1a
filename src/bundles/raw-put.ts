/**
 * The client half of the fast upload (docs/repository.md, "Upload over Upgrade"), over plain http: the PUT head
 * asks for `Upgrade: vmforge-blob` with the length in X-Vmforge-Length; only after `101 Switching Protocols`
 * does the blob go out, read from the file into a few reused buffers (no per-chunk allocation) and written
 * straight to the socket. The server ends with an ordinary HTTP response. Any answer other than 101 (a refusal,
 * or a server without this path: 411) comes back as it is, with `upgraded` false and nothing sent.
 */
import { open } from 'node:fs/promises';
import net from 'node:net';

export const UPGRADE_PROTOCOL = 'vmforge-blob';

export interface RawPutResult {
  status: number;
  headers: Record<string, string>;
  text: string;
  /** Whether the server switched protocols (and so the body was sent, or started). */
  upgraded: boolean;
  /** Body bytes the kernel took. */
  sent: number;
}

export interface RawPutOptions {
  signal?: AbortSignal | undefined;
  idleTimeoutMs: number;
  onSent?: (bytes: number) => void;
}

const SEND_BYTES = 1024 * 1024;
/** Buffers being written at once: the file is read ahead while the socket drains. */
const SEND_BUFFERS = 4;
const READ_BYTES = 64 * 1024;
const MAX_ANSWER_BYTES = 1024 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

interface Head {
  status: number;
  headers: Record<string, string>;
  /** Offset of the body in the received bytes. */
  bodyAt: number;
}

export function rawUpgradePut(url: URL, headers: Record<string, string>, file: { path: string; bytes: number }, opts: RawPutOptions): Promise<RawPutResult> {
  if (url.protocol !== 'http:') throw new Error(`rawUpgradePut is for http: URLs, not ${url.protocol}`);
  const lines = [`PUT ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
  const all = { ...headers, connection: 'Upgrade', upgrade: UPGRADE_PROTOCOL, 'x-vmforge-length': String(file.bytes) };
  for (const [k, v] of Object.entries(all)) {
    // A CR or LF would let a value start a header of its own.
    if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) throw new Error(`header ${k} holds a line break`);
    lines.push(`${k}: ${v}`);
  }

  return new Promise<RawPutResult>((resolve, reject) => {
    let got: Buffer = Buffer.alloc(0);
    let upgraded = false;
    let sent = 0;
    let settled = false;
    let stopSending = false;

    const settle = (e: unknown, r?: RawPutResult) => {
      if (settled) return;
      settled = true;
      stopSending = true;
      opts.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (r) resolve(r);
      else reject(e);
    };
    const fail = (e: unknown) => settle(e);

    /** Parses what arrived so far; settles once a whole final response is in. */
    const onBytes = () => {
      const head = parseHead(got);
      if (!head) {
        if (got.length > MAX_ANSWER_BYTES) fail(Object.assign(new Error('the repository answer head is too large'), { code: 'VMFORGE_BAD_RESPONSE' }));
        return;
      }
      if (head.status === 101 && !upgraded) {
        upgraded = true;
        got = got.subarray(head.bodyAt);
        sendFile().catch(fail);
        if (got.length) onBytes();
        return;
      }
      // A final answer: during the body it is a refusal (the server stops reading), so stop sending.
      stopSending = true;
      const len = Number(head.headers['content-length'] ?? NaN);
      const body = got.subarray(head.bodyAt);
      if (Number.isSafeInteger(len) && body.length >= len) {
        settle(undefined, { status: head.status, headers: head.headers, text: body.subarray(0, len).toString('utf8'), upgraded, sent });
      } else if (got.length > MAX_ANSWER_BYTES) {
        fail(Object.assign(new Error('the repository answer is too large'), { code: 'VMFORGE_BAD_RESPONSE' }));
      }
    };

    const sendFile = async () => {
      const fh = await open(file.path, 'r');
      try {
        const free: Buffer[] = [];
        for (let i = 0; i < SEND_BUFFERS; i++) free.push(Buffer.allocUnsafe(SEND_BYTES));
        let wake: (() => void) | undefined;
        for (let pos = 0; pos < file.bytes && !stopSending; ) {
          while (free.length === 0 && !stopSending) await new Promise<void>((r) => (wake = r));
          if (stopSending) break;
          const buf = free.pop() as Buffer;
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, file.bytes - pos), pos);
          if (bytesRead === 0) throw new Error(`${file.path} ended after ${pos} of ${file.bytes} bytes`);
          pos += bytesRead;
          if (stopSending) break;
          socket.write(buf.subarray(0, bytesRead), (err) => {
            free.push(buf);
            if (!err) {
              sent += bytesRead;
              opts.onSent?.(sent);
            }
            const w = wake;
            wake = undefined;
            w?.();
          });
        }
      } finally {
        await fh.close();
      }
    };

    const socket = net.connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 80),
      onread: {
        buffer: Buffer.allocUnsafe(READ_BYTES),
        callback: (n: number, buf: Buffer) => {
          got = Buffer.concat([got, buf.subarray(0, n)]);
          try {
            onBytes();
          } catch (e) {
            fail(e);
          }
          return !settled;
        },
      },
    });
    socket.setTimeout(opts.idleTimeoutMs, () =>
      socket.destroy(Object.assign(new Error(`no data from ${url.host} for ${opts.idleTimeoutMs / 1000} s`), { code: 'ETIMEDOUT' })),
    );
    const onAbort = () => fail(Object.assign(new Error('the upload was aborted'), { name: 'AbortError', code: 'ABORT_ERR' }));
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('error', fail);
    socket.on('close', () =>
      fail(Object.assign(new Error(`the connection to ${url.host} closed ${upgraded ? `after ${sent} of ${file.bytes} bytes, ` : ''}before an answer`), { code: 'ECONNRESET' })),
    );
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  });
}

function parseHead(got: Buffer): Head | undefined {
  const end = got.indexOf(HEAD_END);
  if (end < 0) return undefined;
  const [statusLine = '', ...headerLines] = got.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!m) throw Object.assign(new Error(`not an HTTP response: ${statusLine.slice(0, 80)}`), { code: 'VMFORGE_BAD_RESPONSE' });
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const k = line.slice(0, i).trim().toLowerCase();
    const v = line.slice(i + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  return { status: Number(m[1]), headers, bodyAt: end + 4 };
}
