/**
 * A minimal HTTP/1.1 GET for blob downloads over plain http. The response head is parsed here and the body is
 * read with net's `onread` into one buffer reused for every read. Node's HTTP client hands each 64 KiB socket
 * read to JavaScript in a freshly allocated buffer; on the paravirtualized test host the page faults of those
 * allocations cost more CPU than hashing and writing the bytes together (docs/performance.md).
 *
 * Only the plain case is handled: a body delimited by Content-Length, one request per connection
 * (`Connection: close`). A response without a Content-Length (chunked, say) comes back with `length`
 * undefined, for the caller to ask again through Node's HTTP client.
 */
import net from 'node:net';

export interface RawResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The body's Content-Length; undefined when the body is delimited otherwise. */
  length: number | undefined;
  /**
   * Hands the body to `onData` chunk by chunk (a chunk is valid only during the call); `onData` returning a
   * promise pauses reading until it settles. Resolves after `length` bytes; rejects when the connection ends
   * or fails first (a retryable error) or when `onData` throws.
   */
  readBody(onData: (chunk: Buffer) => void | Promise<void>): Promise<void>;
  /** The body as text, up to `limit` bytes. */
  readText(limit: number): Promise<string>;
  close(): void;
}

const READ_BYTES = 1024 * 1024;
const MAX_HEAD_BYTES = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

export interface RawGetOptions {
  signal?: AbortSignal | undefined;
  idleTimeoutMs: number;
}

export function rawGet(url: URL, headers: Record<string, string>, opts: RawGetOptions): Promise<RawResponse> {
  if (url.protocol !== 'http:') throw new Error(`rawGet is for http: URLs, not ${url.protocol}`);
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
  for (const [k, v] of Object.entries({ ...headers, connection: 'close' })) {
    // A CR or LF would let a value start a header of its own.
    if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) throw new Error(`header ${k} holds a line break`);
    lines.push(`${k}: ${v}`);
  }
  const request = `${lines.join('\r\n')}\r\n\r\n`;

  return new Promise<RawResponse>((resolveHead, rejectHead) => {
    let head: Buffer = Buffer.alloc(0);
    let response: RawResponse | undefined;
    /** Body bytes that came in the same read as the head, waiting for readBody. */
    let early: Buffer | undefined;
    let received = 0;
    let length: number | undefined;
    let sink: ((chunk: Buffer) => void | Promise<void>) | undefined;
    let settleBody: ((e?: unknown) => void) | undefined;
    let failure: unknown;

    const fail = (e: unknown) => {
      failure ??= e;
      if (!response) rejectHead(e);
      settleBody?.(e);
      socket.destroy();
    };
    const deliver = (chunk: Buffer): boolean => {
      if (!sink || length === undefined) return true;
      const part = chunk.subarray(0, Math.min(chunk.length, length - received));
      received += part.length;
      let more: void | Promise<void>;
      try {
        more = sink(part);
      } catch (e) {
        fail(e);
        return false;
      }
      if (received >= length) {
        settleBody?.();
        socket.destroy();
        return false;
      }
      if (more) {
        more.then(() => socket.resume(), fail);
        return false;
      }
      return true;
    };
    const onRead = (n: number, buf: Buffer): boolean => {
      if (response) return deliver(buf.subarray(0, n));
      head = Buffer.concat([head, buf.subarray(0, n)]);
      const end = head.indexOf(HEAD_END);
      if (end < 0) {
        if (head.length > MAX_HEAD_BYTES) fail(Object.assign(new Error('the response head is too large'), { code: 'VMFORGE_BAD_RESPONSE' }));
        return true;
      }
      try {
        response = parseHead(head.subarray(0, end).toString('latin1'));
      } catch (e) {
        fail(e);
        return false;
      }
      length = response.length;
      if (end + 4 < head.length) early = Buffer.from(head.subarray(end + 4));
      head = Buffer.alloc(0);
      resolveHead(response);
      // Nothing more is read until the caller asks for the body.
      return false;
    };

    const socket = net.connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 80),
      onread: { buffer: Buffer.allocUnsafe(READ_BYTES), callback: onRead },
    });
    socket.setTimeout(opts.idleTimeoutMs, () =>
      socket.destroy(Object.assign(new Error(`no data from ${url.host} for ${opts.idleTimeoutMs / 1000} s`), { code: 'ETIMEDOUT' })),
    );
    const onAbort = () => fail(Object.assign(new Error('the download was aborted'), { name: 'AbortError', code: 'ABORT_ERR' }));
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('error', fail);
    socket.on('close', () => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (!response) fail(Object.assign(new Error(`the connection to ${url.host} closed before a response`), { code: 'ECONNRESET' }));
      else if (length === undefined || received < length) {
        fail(Object.assign(new Error(`the connection ended after ${received} of ${length ?? '?'} body bytes`), { code: 'VMFORGE_SHORT_BODY' }));
      }
    });
    socket.write(request);

    const parseHead = (text: string): RawResponse => {
      const [statusLine = '', ...headerLines] = text.split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
      if (!m) throw Object.assign(new Error(`not an HTTP response: ${statusLine.slice(0, 80)}`), { code: 'VMFORGE_BAD_RESPONSE' });
      const hs: Record<string, string> = {};
      for (const line of headerLines) {
        const i = line.indexOf(':');
        if (i <= 0) continue;
        const k = line.slice(0, i).trim().toLowerCase();
        const v = line.slice(i + 1).trim();
        hs[k] = hs[k] === undefined ? v : `${hs[k]}, ${v}`;
      }
      const cl = hs['content-length'];
      const len = hs['transfer-encoding'] === undefined && cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : undefined;
      const status = Number(m[1]);
      const readBody = (onData: (chunk: Buffer) => void | Promise<void>): Promise<void> =>
        new Promise<void>((resolve, reject) => {
          if (len === undefined) throw new Error('the body has no Content-Length');
          settleBody = (e?: unknown) => {
            settleBody = undefined;
            if (e) reject(e);
            else resolve();
          };
          if (failure) return settleBody(failure);
          sink = onData;
          if (len === 0) return settleBody();
          const first = early;
          early = undefined;
          if (first && !deliver(first)) return;
          socket.resume();
        });
      return {
        status,
        headers: hs,
        length: len,
        readBody,
        readText: async (limit) => {
          if (len === undefined || len > limit) throw Object.assign(new Error(`a repository answer of ${len ?? 'unknown'} bytes`), { code: 'VMFORGE_BAD_RESPONSE' });
          const parts: Buffer[] = [];
          await readBody((c) => void parts.push(Buffer.from(c)));
          return Buffer.concat(parts).toString('utf8');
        },
        close: () => socket.destroy(),
      };
    };
  });
}
