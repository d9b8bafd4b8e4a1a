import { createHash } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawGet } from './raw-get.js';

const BODY = Buffer.alloc(3 * 1024 * 1024 + 17);
for (let i = 0; i < BODY.length; i++) BODY[i] = (i * 31) & 0xff;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let server: http.Server;
let base: string;
const seen: http.IncomingHttpHeaders[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push(req.headers);
    switch (req.url) {
      case '/whole':
        res.writeHead(200, { 'content-length': BODY.length, etag: '"x"' });
        res.end(BODY);
        return;
      case '/chunked':
        res.writeHead(200, { 'transfer-encoding': 'chunked' });
        res.end(BODY.subarray(0, 1000));
        return;
      case '/cut':
        res.writeHead(200, { 'content-length': BODY.length });
        res.write(BODY.subarray(0, 100_000), () => res.socket?.destroy());
        return;
      default:
        res.writeHead(404, { 'content-type': 'application/json', 'content-length': 9 });
        res.end('{"a":"b"}');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('rawGet', () => {
  it('reads a Content-Length body whole, with pauses, and sends the headers it is given', async () => {
    const res = await rawGet(new URL(`${base}/whole`), { authorization: 'Bearer t', range: 'bytes=0-' }, { idleTimeoutMs: 5000 });
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe('"x"');
    expect(res.length).toBe(BODY.length);
    const parts: Buffer[] = [];
    let n = 0;
    await res.readBody((c) => {
      parts.push(Buffer.from(c));
      // Every other chunk makes the reader wait.
      if (n++ % 2) return new Promise((r) => setTimeout(r, 1));
    });
    expect(sha(Buffer.concat(parts))).toBe(sha(BODY));
    expect(seen.at(-1)).toMatchObject({ authorization: 'Bearer t', range: 'bytes=0-', connection: 'close' });
  });

  it('leaves a chunked body to the caller (length undefined)', async () => {
    const res = await rawGet(new URL(`${base}/chunked`), {}, { idleTimeoutMs: 5000 });
    expect(res.status).toBe(200);
    expect(res.length).toBeUndefined();
    res.close();
  });

  it('reads an error body as text', async () => {
    const res = await rawGet(new URL(`${base}/nope`), {}, { idleTimeoutMs: 5000 });
    expect(res.status).toBe(404);
    expect(await res.readText(1000)).toBe('{"a":"b"}');
  });

  it('fails a body cut short with a retryable code, after handing over what came', async () => {
    const res = await rawGet(new URL(`${base}/cut`), {}, { idleTimeoutMs: 5000 });
    let got = 0;
    const e = await res.readBody((c) => void (got += c.length)).catch((x: unknown) => x);
    expect((e as { code?: string }).code).toBe('VMFORGE_SHORT_BODY');
    expect(got).toBe(100_000);
  });

  it('refuses a header value with a line break', () => {
    expect(() => rawGet(new URL(`${base}/whole`), { authorization: 'a\r\nx: y' }, { idleTimeoutMs: 5000 })).toThrow(/line break/);
  });

  it('rejects when aborted', async () => {
    const ac = new AbortController();
    const p = rawGet(new URL(`${base}/whole`), {}, { idleTimeoutMs: 5000, signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
  });
});
