/**
 * The bundle repository server (docs/repository.md) over real HTTP on 127.0.0.1: uploads streamed and checked,
 * downloads with HEAD and Range, tokens and scopes, traversal names, size limit, concurrent publishers, deletes,
 * idle clients, the real Debian template bundle, and `vmforge repo serve` itself.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleStore } from '../../src/bundles/store.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { ensureTemplate, REPO, requireRoot, TEMPLATE_CACHE } from '../harness/env.js';
import { makeTestBundle, servedUrl, startTestRepo, type TestBundle, type TestRepo } from '../harness/repo-fixture.js';

requireRoot();

const RW = 'rw-token-3b1f0c9d8e7a6b5c';
const RO = 'ro-token-9a8b7c6d5e4f3a2b';
const MAX_UPLOAD = 4 * 1024 * 1024;

type Bundle = TestBundle;
type Srv = TestRepo;

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

let work: string;
let A: Bundle;
let B: Bundle;
const servers: Srv[] = [];

beforeAll(async () => {
  work = await mkdtemp('/var/tmp/vmforge-repo-');
  const runner = new HostProcessRunner();
  const srcStore = join(work, 'src-store');
  const make = (name: string, seed: string) => makeTestBundle(runner, { work, storeDir: srcStore, name, seed, randomKiB: 768 });
  A = await make('tiny', 'a');
  B = await make('tiny-b', 'b');
  expect(A.manifest.sha256).not.toBe(B.manifest.sha256);
});

afterAll(async () => {
  for (const s of servers) await s.app.close().catch(() => undefined);
  if (work) await rm(work, { recursive: true, force: true });
});

// -----------------------------------------------------------------------------------------------------------
// helpers

async function startServer(over: Record<string, unknown> = {}): Promise<Srv> {
  const srv = await startTestRepo(work, { rw: RW, ro: RO, maxUploadBytes: MAX_UPLOAD, over });
  servers.push(srv);
  return srv;
}

const auth = (token: string | undefined): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});
const manifestHeader = (m: unknown) => Buffer.from(JSON.stringify(m)).toString('base64url');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const relabel = (b: Bundle, name: string, version: string): Bundle => ({ ...b, manifest: { ...b.manifest, name, version } });

/** One request with http.request: the path goes out exactly as given (no URL normalisation). */
function send(srv: Srv, method: string, path: string, opts: { headers?: Record<string, string | number>; body?: Buffer } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, method, path, headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

function uploadHeaders(b: Bundle, token: string | null = RW, over: Record<string, string | number> = {}): Record<string, string | number> {
  return { ...auth(token ?? undefined), 'content-length': b.manifest.compressedBytes, 'x-vmforge-sha256': b.manifest.sha256, 'x-vmforge-manifest': manifestHeader(b.manifest), ...over };
}

/**
 * PUT as a careful client does it: `Expect: 100-continue`, and the body streamed from the file only once the
 * server says go on; a refusal comes back before any of it is sent.
 */
function upload(srv: Srv, b: Bundle, opts: { token?: string | undefined; path?: string; headers?: Record<string, string | number>; body?: Buffer } = {}): Promise<Res & { bodySent: boolean }> {
  const path = opts.path ?? `/v1/bundles/${b.manifest.name}/${b.manifest.version}`;
  const headers = { ...uploadHeaders(b, 'token' in opts ? (opts.token ?? null) : RW, opts.headers), expect: '100-continue' };
  return new Promise((resolve, reject) => {
    let bodySent = false;
    const req = http.request({ host: '127.0.0.1', port: srv.port, method: 'PUT', path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), bodySent }));
    });
    req.on('continue', () => {
      bodySent = true;
      if (opts.body) req.end(opts.body);
      else createReadStream(b.blobPath).pipe(req);
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

/** A PUT whose body is written by the test, piece by piece. */
function manualUpload(srv: Srv, b: Bundle, path = `/v1/bundles/${b.manifest.name}/${b.manifest.version}`) {
  const req = http.request({ host: '127.0.0.1', port: srv.port, method: 'PUT', path, headers: uploadHeaders(b), agent: false });
  const response = new Promise<Res>((resolve, reject) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
  });
  const closed = new Promise<void>((resolve) => req.on('close', () => resolve()));
  return { req, response, closed };
}

const json = <T = unknown>(r: Res): T => JSON.parse(r.body.toString('utf8')) as T;
const errCode = (r: Res) => json<{ error: { code: string; message: string } }>(r).error.code;
const ls = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).sort();
const tmpFiles = (srv: Srv) => ls(join(srv.dataDir, 'tmp'));
const blobFiles = (srv: Srv) => ls(join(srv.dataDir, 'blobs', 'sha256'));

async function until(what: string, cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function expectNothingStored(srv: Srv): Promise<void> {
  expect(await srv.store.list()).toEqual([]);
  expect(await blobFiles(srv)).toEqual([]);
  await until('tmp/ empty', async () => (await tmpFiles(srv)).length === 0);
}

async function write(req: http.ClientRequest, data: Buffer): Promise<void> {
  if (!req.write(data)) await new Promise((r) => req.once('drain', r));
}

/** Sends raw bytes on a fresh TCP connection and returns everything the server sends until it closes. */
function rawExchange(srv: Srv, head: string, opts: { timeoutMs: number }): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(srv.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedByServer: false });
    }, opts.timeoutMs);
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('end', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedByServer: true });
    });
    sock.write(head);
  });
}

// -----------------------------------------------------------------------------------------------------------

describe('upload and download', () => {
  it('uploads, lists, serves the manifest, HEAD, the whole blob and ranges of it', async () => {
    const srv = await startServer();
    const up = await upload(srv, A);
    expect(up.status, up.body.toString()).toBe(201);
    expect(json(up)).toEqual(A.manifest);
    expect(up.headers.location).toBe('/v1/bundles/tiny/1/manifest');
    expect((await srv.store.verify('tiny:1')).ok).toBe(true);
    expect(await tmpFiles(srv)).toEqual([]);

    const get = (path: string, headers: Record<string, string> = {}) => fetch(`${srv.url}${path}`, { headers: { ...auth(RO), ...headers } });
    expect(await (await get('/v1/bundles')).json()).toEqual([A.manifest]);
    expect(await (await get('/v1/bundles?name=tiny')).json()).toEqual([A.manifest]);
    expect(await (await get('/v1/bundles?os=debian')).json()).toEqual([A.manifest]);
    expect(await (await get('/v1/bundles?name=other')).json()).toEqual([]);
    expect(await (await get('/v1/bundles?os=fedora')).json()).toEqual([]);
    expect((await get('/v1/bundles?name=..%2Fetc')).status).toBe(400);
    expect(await (await get('/v1/bundles/tiny/1/manifest')).json()).toEqual(A.manifest);
    expect(await (await get('/v1/bundles/tiny/latest/manifest')).json()).toEqual(A.manifest);
    expect((await get('/v1/bundles/tiny/2/manifest')).status).toBe(404);
    expect((await get('/v1/bundles/nope/latest/blob')).status).toBe(404);

    const size = A.bytes.length;
    const etag = `"${A.manifest.sha256}"`;
    const head = await send(srv, 'HEAD', '/v1/bundles/tiny/1/blob', { headers: auth(RO) });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(size));
    expect(head.headers.etag).toBe(etag);
    expect(head.headers['accept-ranges']).toBe('bytes');
    expect(head.body.length).toBe(0);

    const full = await get('/v1/bundles/tiny/1/blob');
    expect(full.status).toBe(200);
    expect(full.headers.get('etag')).toBe(etag);
    const fullBytes = Buffer.from(await full.arrayBuffer());
    expect(sha(fullBytes)).toBe(A.manifest.sha256);

    // Resume: what a client interrupted at `n` bytes asks for next is exactly the rest of the file.
    const n = Math.floor(size / 3);
    const tail = await get('/v1/bundles/tiny/1/blob', { range: `bytes=${n}-`, 'if-range': etag });
    expect(tail.status).toBe(206);
    expect(tail.headers.get('content-range')).toBe(`bytes ${n}-${size - 1}/${size}`);
    expect(tail.headers.get('content-length')).toBe(String(size - n));
    expect(Buffer.concat([A.bytes.subarray(0, n), Buffer.from(await tail.arrayBuffer())]).equals(A.bytes)).toBe(true);

    const mid = await get('/v1/bundles/tiny/latest/blob', { range: 'bytes=100-199' });
    expect(mid.status).toBe(206);
    expect(mid.headers.get('content-range')).toBe(`bytes 100-199/${size}`);
    expect(Buffer.from(await mid.arrayBuffer()).equals(A.bytes.subarray(100, 200))).toBe(true);

    const past = await get('/v1/bundles/tiny/1/blob', { range: `bytes=${size}-` });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${size}`);

    // A resume against a blob that changed (other ETag) gets the whole new one instead of a mixed file.
    const stale = await get('/v1/bundles/tiny/1/blob', { range: `bytes=${n}-`, 'if-range': `"${'0'.repeat(64)}"` });
    expect(stale.status).toBe(200);
    expect(Buffer.from(await stale.arrayBuffer()).length).toBe(size);
    expect((await get('/v1/bundles/tiny/1/blob', { 'if-none-match': etag })).status).toBe(304);

    const again = await upload(srv, A);
    expect(again.status).toBe(409);
    expect(errCode(again)).toBe('CONFLICT');
    expect(again.bodySent).toBe(false);

    expect(await (await fetch(`${srv.url}/v1/health`)).json()).toEqual({ ok: true });
    // Tokens never reach the log, only their names.
    const logText = JSON.stringify(srv.logs);
    expect(logText).not.toContain(RW);
    expect(logText).not.toContain(RO);
    expect(logText).toContain('"token":"reader"');
  });

  it('an upload without Expect: 100-continue works the same', async () => {
    const srv = await startServer();
    const r = await send(srv, 'PUT', '/v1/bundles/tiny/1', { headers: uploadHeaders(A), body: A.bytes });
    expect(r.status, r.body.toString()).toBe(201);
    expect((await srv.store.verify('tiny:1')).ok).toBe(true);
  });
});

describe('uploads that must store nothing', () => {
  it('refuses wrong digests (422) and malformed uploads (400, 411)', async () => {
    const srv = await startServer();
    const corrupt = Buffer.from(A.bytes);
    corrupt[corrupt.length >> 1] = (corrupt[corrupt.length >> 1] as number) ^ 0xff;

    // The body does not hash to what both the header and the manifest say: found out after reading it.
    const r1 = await upload(srv, A, { body: corrupt });
    expect(r1.status, r1.body.toString()).toBe(422);
    expect(errCode(r1)).toBe('DIGEST_MISMATCH');
    expect(r1.bodySent).toBe(true);
    await expectNothingStored(srv);

    // Header and manifest disagree, or the length does: refused before the body is sent.
    const r2 = await upload(srv, A, { headers: { 'x-vmforge-sha256': sha(corrupt) } });
    expect([r2.status, errCode(r2), r2.bodySent]).toEqual([422, 'DIGEST_MISMATCH', false]);
    const short = A.bytes.subarray(0, A.bytes.length - 1);
    const r3 = await upload(srv, A, { headers: { 'content-length': short.length }, body: short });
    expect([r3.status, errCode(r3), r3.bodySent]).toEqual([422, 'DIGEST_MISMATCH', false]);

    const bad = async (headers: Record<string, string | number>, status = 400, path?: string) => {
      const r = await upload(srv, A, { headers, ...(path ? { path } : {}) });
      expect(r.status, `${JSON.stringify(headers)} ${r.body.toString()}`).toBe(status);
      expect(r.bodySent).toBe(false);
    };
    await bad({ 'x-vmforge-manifest': 'not base64 !!' });
    await bad({ 'x-vmforge-manifest': Buffer.from('{"nope":1}').toString('base64url') });
    await bad({ 'x-vmforge-manifest': Buffer.from('not json').toString('base64url') });
    await bad({ 'x-vmforge-sha256': 'abc' });
    await bad({}, 400, '/v1/bundles/other/1'); // manifest names tiny:1
    await bad({}, 400, '/v1/bundles/tiny/latest');
    const noSha = uploadHeaders(A);
    delete noSha['x-vmforge-sha256'];
    const r4 = await send(srv, 'PUT', '/v1/bundles/tiny/1', { headers: noSha, body: A.bytes });
    expect(r4.status).toBe(400);

    // Chunked: no Content-Length.
    const chunked = await new Promise<Res>((resolve, reject) => {
      const h = uploadHeaders(A);
      delete h['content-length'];
      const req = http.request({ host: '127.0.0.1', port: srv.port, method: 'PUT', path: '/v1/bundles/tiny/1', headers: h, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.alloc(0) }));
      });
      req.on('error', reject);
      req.write(A.bytes.subarray(0, 1000));
      req.end();
    });
    expect(chunked.status).toBe(411);
    await expectNothingStored(srv);
  });

  it('a client that disconnects mid-upload leaves nothing', async () => {
    const srv = await startServer();
    const up = manualUpload(srv, A);
    up.response.catch(() => undefined);
    await write(up.req, A.bytes.subarray(0, A.bytes.length >> 1));
    // The server is streaming it to tmp/ ...
    await until('a partial file in tmp/', async () => {
      const files = await tmpFiles(srv);
      return files.length === 1 && (await stat(join(srv.dataDir, 'tmp', files[0] as string))).size > 0;
    });
    up.req.destroy();
    await expectNothingStored(srv);
    await until('the abandoned upload logged', async () => srv.logs.some((l) => l.msg.includes('abandoned')));
    // And the server is still fine.
    expect((await upload(srv, A)).status).toBe(201);
  });

  it('Content-Length over maxUploadBytes: 413 without reading the body', async () => {
    const srv = await startServer();
    const big = relabel({ ...A, bytes: Buffer.alloc(0) }, 'big', '1');
    big.manifest.compressedBytes = MAX_UPLOAD + 1;
    const head = (extra: string) =>
      `PUT /v1/bundles/big/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${RW}\r\nContent-Length: ${MAX_UPLOAD + 1}\r\n` +
      `X-Vmforge-Sha256: ${A.manifest.sha256}\r\nX-Vmforge-Manifest: ${manifestHeader(big.manifest)}\r\n${extra}\r\n`;
    // Not one byte of the body is sent: the answer must come anyway, and the server closes the connection.
    for (const extra of ['', 'Expect: 100-continue\r\n']) {
      const r = await rawExchange(srv, head(extra), { timeoutMs: 5000 });
      expect(r.text).toMatch(/^HTTP\/1\.1 413 /);
      expect(r.text).not.toContain('100 Continue');
      expect(r.text).toContain('"code":"PAYLOAD_TOO_LARGE"');
      expect(r.closedByServer).toBe(true);
    }
    await expectNothingStored(srv);
    expect(await ls(srv.dataDir)).not.toContain('tmp');
  });

  it('an upload larger than the free space: 507 before reading the body', async () => {
    const srv = await startServer({ maxUploadBytes: '1000T' });
    const huge = relabel(A, 'huge', '1');
    huge.manifest.compressedBytes = 900 * 1024 ** 4;
    const r = await rawExchange(
      srv,
      `PUT /v1/bundles/huge/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${RW}\r\nContent-Length: ${huge.manifest.compressedBytes}\r\n` +
        `X-Vmforge-Sha256: ${A.manifest.sha256}\r\nX-Vmforge-Manifest: ${manifestHeader(huge.manifest)}\r\n\r\n`,
      { timeoutMs: 5000 },
    );
    expect(r.text).toMatch(/^HTTP\/1\.1 507 /);
    expect(r.text).toContain('"code":"INSUFFICIENT_SPACE"');
    await expectNothingStored(srv);
  });

  it('a client that stops sending is disconnected after the idle timeout, leaving nothing', async () => {
    const srv = await startServer({ idleTimeoutSeconds: 1 });
    const up = manualUpload(srv, A);
    up.response.catch(() => undefined);
    await write(up.req, A.bytes.subarray(0, A.bytes.length >> 1));
    const t0 = performance.now();
    await Promise.race([up.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('the server never disconnected the idle client')), 8000))]);
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThan(800);
    expect(waited).toBeLessThan(5000);
    await expectNothingStored(srv);
    // An idle keep-alive connection goes too, but an active one is not cut.
    expect((await upload(srv, A)).status).toBe(201);
  });
});

describe('tokens', () => {
  it('401 without or with an unknown token, 403 without the scope', async () => {
    const srv = await startServer();
    const reads = ['/v1/bundles', '/v1/bundles/tiny/1/manifest', '/v1/bundles/tiny/1/blob'];
    for (const p of reads) {
      const r = await send(srv, 'GET', p);
      expect([p, r.status, errCode(r)]).toEqual([p, 401, 'UNAUTHORIZED']);
      expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
      expect((await send(srv, 'GET', p, { headers: auth(`${RO}x`) })).status).toBe(401);
      expect((await send(srv, 'GET', p, { headers: { authorization: `Basic ${Buffer.from(`a:${RO}`).toString('base64')}` } })).status).toBe(401);
    }
    expect((await send(srv, 'HEAD', '/v1/bundles/tiny/1/blob')).status).toBe(401);

    const noToken = await upload(srv, A, { token: undefined });
    expect([noToken.status, noToken.bodySent]).toEqual([401, false]);
    const readOnly = await upload(srv, A, { token: RO });
    expect([readOnly.status, errCode(readOnly), readOnly.bodySent]).toEqual([403, 'FORBIDDEN', false]);
    // The same refusals for a client that sends the body right away.
    expect((await send(srv, 'PUT', '/v1/bundles/tiny/1', { headers: uploadHeaders(A, RO), body: A.bytes })).status).toBe(403);
    expect((await send(srv, 'PUT', '/v1/bundles/tiny/1', { headers: uploadHeaders(A, 'wrong-token-0123456789'), body: A.bytes })).status).toBe(401);
    await expectNothingStored(srv);

    expect((await upload(srv, A)).status).toBe(201);
    expect((await send(srv, 'DELETE', '/v1/bundles/tiny/1', { headers: auth(RO) })).status).toBe(403);
    expect((await send(srv, 'DELETE', '/v1/bundles/tiny/1')).status).toBe(401);
    expect((await srv.store.list()).length).toBe(1);
    expect((await send(srv, 'GET', '/v1/bundles/tiny/1/blob', { headers: auth(RW) })).status).toBe(200);
    expect((await send(srv, 'GET', '/v1/health')).status).toBe(200);
  });

  it('anonymousRead allows reads without a token, never writes', async () => {
    const srv = await startServer({ anonymousRead: true });
    expect((await upload(srv, A, { token: undefined })).status).toBe(401);
    expect((await upload(srv, A)).status).toBe(201);
    const list = await send(srv, 'GET', '/v1/bundles');
    expect(list.status).toBe(200);
    expect(json(list)).toEqual([A.manifest]);
    const blob = await send(srv, 'GET', '/v1/bundles/tiny/1/blob');
    expect(blob.body.equals(A.bytes)).toBe(true);
    // A bad token is still refused: the client should learn its token is wrong.
    expect((await send(srv, 'GET', '/v1/bundles', { headers: auth('not-a-real-token-000000') })).status).toBe(401);
    expect((await send(srv, 'DELETE', '/v1/bundles/tiny/1')).status).toBe(401);
  });
});

describe('names', () => {
  it('refuses traversal and malformed names and versions with 400, touching nothing outside the data dir', async () => {
    const srv = await startServer();
    expect((await upload(srv, A)).status).toBe(201);
    const base = join(srv.dataDir, '..');
    // What a traversal would reach: the data dir's siblings.
    await mkdir(join(base, 'etc'));
    await writeFile(join(base, 'etc', 'passwd'), 'sentinel\n');
    const before = await ls(base);
    const bad = ['..', '%2e%2e', '%2E%2E', '.%2e', 'a%2Fb', '..%2F..%2Fetc', '..%2f..%2fetc%2fpasswd', '%2Fetc', '.hidden', 'UPPER', 'a%00b', 'a%20b', 'a:b'];
    for (const n of bad) {
      const tries: [string, string, Record<string, string | number>][] = [
        ['GET', `/v1/bundles/${n}/1/manifest`, auth(RW)],
        ['GET', `/v1/bundles/tiny/${n}/manifest`, auth(RW)],
        ['GET', `/v1/bundles/${n}/latest/blob`, auth(RW)],
        ['HEAD', `/v1/bundles/tiny/${n}/blob`, auth(RW)],
        ['DELETE', `/v1/bundles/${n}/1`, auth(RW)],
        ['DELETE', `/v1/bundles/tiny/${n}`, auth(RW)],
        ['PUT', `/v1/bundles/${n}/1`, uploadHeaders(A)],
        ['PUT', `/v1/bundles/tiny/${n}`, uploadHeaders(A)],
        ['GET', `/v1/bundles?name=${n}`, auth(RW)],
      ];
      for (const [method, path, headers] of tries) {
        const r = await send(srv, method, path, { headers, ...(method === 'PUT' ? { body: A.bytes } : {}) });
        expect(`${method} ${path} -> ${r.status}`).toBe(`${method} ${path} -> 400`);
      }
    }
    expect(await ls(base)).toEqual(before);
    expect(await readFile(join(base, 'etc', 'passwd'), 'utf8')).toBe('sentinel\n');
    expect(await ls(join(base, 'etc'))).toEqual(['passwd']);
    expect(await ls(join(srv.dataDir, 'manifests'))).toEqual(['tiny']);
    expect((await srv.store.list()).map((m) => `${m.name}:${m.version}`)).toEqual(['tiny:1']);
    expect(await tmpFiles(srv)).toEqual([]);
  });
});

describe('concurrent uploads of one name:version', () => {
  it('exactly one wins, the other gets 409, and the stored blob is intact', async () => {
    const srv = await startServer();
    for (const [version, second] of [
      ['1', B],
      ['2', A],
    ] as const) {
      const contenders = [relabel(A, 'conc', version), relabel(second, 'conc', version)];
      const ups = contenders.map((c) => manualUpload(srv, c));
      // Both past the early existence check and streaming before either finishes.
      for (const [i, up] of ups.entries()) await write(up.req, (contenders[i] as Bundle).bytes.subarray(0, 1000));
      await until('both uploads streaming to tmp/', async () => (await tmpFiles(srv)).length === 2);
      for (const [i, up] of ups.entries()) up.req.end((contenders[i] as Bundle).bytes.subarray(1000));
      const res = await Promise.all(ups.map((u) => u.response));
      expect(res.map((r) => r.status).sort()).toEqual([201, 409]);
      const winner = contenders[res.findIndex((r) => r.status === 201)] as Bundle;
      const stored = await srv.store.resolve(`conc:${version}`);
      expect(stored.manifest.sha256).toBe(winner.manifest.sha256);
      expect((await srv.store.verify(`conc:${version}`)).ok).toBe(true);
      const got = await send(srv, 'GET', `/v1/bundles/conc/${version}/blob`, { headers: auth(RO) });
      expect(sha(got.body)).toBe(winner.manifest.sha256);
    }
    // Only blobs some manifest names are left: the losers' went away.
    const named = new Set((await srv.store.list()).map((m) => `${m.sha256}.tar.zst`));
    expect(await blobFiles(srv)).toEqual([...named].sort());
    expect(await tmpFiles(srv)).toEqual([]);
  });
});

describe('delete', () => {
  it('removes a bundle, keeping a blob another version still uses', async () => {
    const srv = await startServer();
    for (const v of ['1', '2']) expect((await upload(srv, relabel(A, 'shared', v))).status).toBe(201);
    expect((await upload(srv, B)).status).toBe(201);
    expect(await blobFiles(srv)).toHaveLength(2);

    const d1 = await send(srv, 'DELETE', '/v1/bundles/shared/1', { headers: auth(RW) });
    expect([d1.status, json(d1)]).toEqual([200, { removed: 'shared:1', blobRemoved: false }]);
    expect((await send(srv, 'GET', '/v1/bundles/shared/1/manifest', { headers: auth(RO) })).status).toBe(404);
    expect((await send(srv, 'GET', '/v1/bundles/shared/2/blob', { headers: auth(RO) })).body.equals(A.bytes)).toBe(true);

    const d2 = await send(srv, 'DELETE', '/v1/bundles/shared/2', { headers: auth(RW) });
    expect(json(d2)).toEqual({ removed: 'shared:2', blobRemoved: true });
    expect(await blobFiles(srv)).toEqual([`${B.manifest.sha256}.tar.zst`]);
    const gone = await send(srv, 'DELETE', '/v1/bundles/shared/2', { headers: auth(RW) });
    expect([gone.status, errCode(gone)]).toEqual([404, 'NOT_FOUND']);
    expect(json<{ error: { message: string } }>(gone).error.message).not.toContain(srv.dataDir);

    // A download already under way finishes even when the bundle is deleted meanwhile.
    const dl = http.get({ host: '127.0.0.1', port: srv.port, path: '/v1/bundles/tiny-b/1/blob', headers: auth(RO), agent: false });
    const res = await new Promise<http.IncomingMessage>((r) => dl.on('response', r));
    expect((await send(srv, 'DELETE', '/v1/bundles/tiny-b/1', { headers: auth(RW) })).status).toBe(200);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    expect(sha(Buffer.concat(chunks))).toBe(B.manifest.sha256);
    expect(await srv.store.list()).toEqual([]);
    expect(await blobFiles(srv)).toEqual([]);
  });
});

describe('the real Debian template bundle', () => {
  it('uploads, downloads whole and resumed, with server memory flat', async () => {
    const { manifest, blobPath } = await new BundleStore(TEMPLATE_CACHE).resolve(await ensureTemplate());
    const srv = await startServer({ maxUploadBytes: '64G' });
    const tpl: Bundle = { manifest, blobPath, bytes: Buffer.alloc(0) };
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      const t0 = performance.now();
      const up = await upload(srv, tpl);
      const upMs = performance.now() - t0;
      expect(up.status, up.body.toString()).toBe(201);
      expect((await srv.store.verify(`${manifest.name}:${manifest.version}`)).ok).toBe(true);

      const streamHash = async (headers: Record<string, string>) =>
        new Promise<{ status: number; sha: string; bytes: number; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
          http
            .get({ host: '127.0.0.1', port: srv.port, path: `/v1/bundles/${manifest.name}/latest/blob`, headers: { ...auth(RO), ...headers }, agent: false }, (res) => {
              const h = createHash('sha256');
              let bytes = 0;
              res.on('data', (c: Buffer) => {
                h.update(c);
                bytes += c.length;
              });
              res.on('end', () => resolve({ status: res.statusCode ?? 0, sha: h.digest('hex'), bytes, headers: res.headers }));
              res.on('error', reject);
            })
            .on('error', reject);
        });
      const t1 = performance.now();
      const whole = await streamHash({});
      const downMs = performance.now() - t1;
      expect([whole.status, whole.bytes, whole.sha]).toEqual([200, manifest.compressedBytes, manifest.sha256]);

      const n = Math.floor(manifest.compressedBytes * 0.6);
      const tail = await streamHash({ range: `bytes=${n}-` });
      const want = createHash('sha256');
      for await (const c of createReadStream(blobPath, { start: n })) want.update(c as Buffer);
      expect([tail.status, tail.bytes, tail.sha]).toEqual([206, manifest.compressedBytes - n, want.digest('hex')]);
      const mib = (b: number) => (b / 1024 / 1024).toFixed(0);
      console.log(
        `template ${mib(manifest.compressedBytes)} MiB: upload ${(upMs / 1000).toFixed(2)} s, download ${(downMs / 1000).toFixed(2)} s; ` +
          `test process RSS ${mib(rss0)} -> peak ${mib(peak)} MiB (client and server in one process)`,
      );
      // Nothing proportional to the blob is held: the peak stays far below its size.
      expect(peak - rss0).toBeLessThan(Math.min(100 * 1024 * 1024, manifest.compressedBytes / 2));
    } finally {
      clearInterval(sampler);
    }
  });
});

describe('vmforge repo serve', () => {
  it('prints its URL, serves, and stops cleanly on SIGTERM', async () => {
    const dir = await mkdtemp(join(work, 'cli-'));
    const configPath = join(dir, 'config.yaml');
    await writeFile(join(dir, 'token'), `${RW}\n`);
    await writeFile(
      configPath,
      `stateDir: ${dir}/state\nrepoServer:\n  tokens:\n    - name: file-token\n      tokenFile: ${dir}/token\n      scopes: [read, write]\n`,
    );
    const cli = (args: string[]): ResultPromise => execa(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), ...args], { cwd: REPO, reject: false });

    const help = await cli(['repo', 'serve', '--help']);
    expect(help.stdout).toContain('--listen');
    expect(help.stdout).toContain('Examples:');

    const proc = cli(['repo', 'serve', '--listen', '127.0.0.1:0', '--data', join(dir, 'data'), '--config', configPath]);
    try {
      const url = await servedUrl(proc);
      expect(await (await fetch(`${url}/v1/health`)).json()).toEqual({ ok: true });
      expect((await fetch(`${url}/v1/bundles`)).status).toBe(401);
      expect((await fetch(`${url}/v1/bundles`, { headers: auth(RW) })).status).toBe(200);
      proc.kill('SIGTERM');
      const r = await proc;
      expect(r.exitCode, String(r.stderr)).toBe(0);
      expect(String(r.stdout)).toContain('stopped');
      expect(String(r.stderr)).not.toContain(RW);
      expect(String(r.stderr)).toContain('"token":"file-token"');
    } finally {
      proc.kill('SIGKILL');
    }
  });
});
