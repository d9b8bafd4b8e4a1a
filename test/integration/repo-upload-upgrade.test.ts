/**
 * The fast upload path of the bundle repository (docs/repository.md, "Upload over Upgrade") over real HTTP on
 * 127.0.0.1: `PUT` with `Upgrade: vmforge-blob`, 101, the raw body, then the answer. The same guarantees as the
 * plain PUT: tokens, names, size limit and digests checked before 101; a wrong digest, a cut connection or a
 * stalled client store nothing; two uploads of one name:version: one wins, the other 409. Other upgrades (curl's
 * h2c) are served as plain requests, and a client falls back to the plain PUT on a server without this path.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawUpgradePut, type RawPutResult } from '../../src/bundles/raw-put.js';
import { RepoClient } from '../../src/bundles/repo-client.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { requireRoot } from '../harness/env.js';
import { makeTestBundle, startTestRepo, type TestBundle, type TestRepo } from '../harness/repo-fixture.js';

requireRoot();

const RW = 'rw-token-upg-3b1f0c9d8e7a6b5c';
const RO = 'ro-token-upg-9a8b7c6d5e4f3a2b';
const MAX_UPLOAD = 4 * 1024 * 1024;

type Bundle = TestBundle;
type Srv = TestRepo;

let work: string;
let A: Bundle;
let B: Bundle;
const servers: Srv[] = [];

beforeAll(async () => {
  work = await mkdtemp('/var/tmp/vmforge-repo-upg-');
  const runner = new HostProcessRunner();
  const srcStore = join(work, 'src-store');
  const make = (name: string, seed: string) => makeTestBundle(runner, { work, storeDir: srcStore, name, seed, randomKiB: 1536 });
  A = await make('upg-a', 'a');
  B = await make('upg-b', 'b');
});

afterAll(async () => {
  for (const s of servers) await s.app.close().catch(() => undefined);
  if (work) await rm(work, { recursive: true, force: true });
});

async function startServer(over: Record<string, unknown> = {}): Promise<Srv> {
  const srv = await startTestRepo(work, { rw: RW, ro: RO, maxUploadBytes: MAX_UPLOAD, over });
  servers.push(srv);
  return srv;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const relabel = (b: Bundle, name: string, version: string): Bundle => ({ ...b, manifest: { ...b.manifest, name, version } });
const ls = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).sort();
const tmpFiles = (srv: Srv) => ls(join(srv.dataDir, 'tmp'));
const blobFiles = (srv: Srv) => ls(join(srv.dataDir, 'blobs', 'sha256'));
const errCode = (r: RawPutResult) => (JSON.parse(r.text) as { error: { code: string } }).error.code;

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

function headersFor(b: Bundle, token: string | null, over: Record<string, string> = {}): Record<string, string> {
  return {
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    'x-vmforge-sha256': b.manifest.sha256,
    'x-vmforge-manifest': Buffer.from(JSON.stringify(b.manifest)).toString('base64url'),
    ...over,
  };
}

/** The fast upload of `file` (default: the bundle's blob) under the bundle's name:version. */
function fastPut(srv: Srv, b: Bundle, opts: { token?: string | null; headers?: Record<string, string>; file?: string; bytes?: number } = {}) {
  const url = new URL(`/v1/bundles/${b.manifest.name}/${b.manifest.version}`, srv.url);
  const token = opts.token === undefined ? RW : opts.token;
  return rawUpgradePut(url, headersFor(b, token, opts.headers), { path: opts.file ?? b.blobPath, bytes: opts.bytes ?? b.manifest.compressedBytes }, { idleTimeoutMs: 20_000 });
}

/**
 * A hand-driven upgraded upload: head, wait for 101, then the test writes the body. Resolves the 101 (or
 * the refusal) as text.
 */
function manualUpgrade(srv: Srv, b: Bundle): Promise<{ sock: net.Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(srv.port, '127.0.0.1');
    let got = '';
    const h = headersFor(b, RW);
    const head = [
      `PUT /v1/bundles/${b.manifest.name}/${b.manifest.version} HTTP/1.1`,
      'host: 127.0.0.1',
      'connection: Upgrade',
      'upgrade: vmforge-blob',
      `x-vmforge-length: ${b.manifest.compressedBytes}`,
      ...Object.entries(h).map(([k, v]) => `${k}: ${v}`),
    ];
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        sock.removeAllListeners('data');
        resolve({ sock, head: got });
      }
    });
    sock.on('error', reject);
    sock.write(`${head.join('\r\n')}\r\n\r\n`);
  });
}

describe('upload over Upgrade: vmforge-blob', () => {
  it('RepoClient.publish uses it: 201, stored whole, verified, served back byte for byte', async () => {
    const srv = await startServer();
    const client = new RepoClient(srv.url, RW);
    const res = await client.publish({ manifest: A.manifest, blobPath: A.blobPath, manifestPath: '' });
    expect(res).toMatchObject({ alreadyPresent: false, bytes: A.manifest.compressedBytes, attempts: 1 });
    expect(srv.logs.some((l) => l.msg === 'request' && l.obj.upgrade === 'vmforge-blob' && l.obj.status === 201 && l.obj.token === 'writer')).toBe(true);
    expect((await srv.store.verify('upg-a:1')).ok).toBe(true);
    const back = await fetch(`${srv.url}/v1/bundles/upg-a/1/blob`, { headers: { authorization: `Bearer ${RO}` } });
    expect(sha(Buffer.from(await back.arrayBuffer()))).toBe(A.manifest.sha256);
    expect(await tmpFiles(srv)).toEqual([]);
    // The same publish again is a no-op; the same name:version with other bytes is a conflict, before 101.
    expect((await client.publish({ manifest: A.manifest, blobPath: A.blobPath, manifestPath: '' })).alreadyPresent).toBe(true);
    const other = await fastPut(srv, relabel(B, 'upg-a', '1'));
    expect(other).toMatchObject({ status: 409, upgraded: false, sent: 0 });
  });

  it('a wrong digest is 422 and stores nothing', async () => {
    const srv = await startServer();
    const wrong = join(work, 'wrong.blob');
    const bytes = Buffer.from(A.bytes);
    const mid = bytes.length >> 1;
    bytes.writeUInt8(bytes.readUInt8(mid) ^ 0xff, mid);
    await writeFile(wrong, bytes);
    const r = await fastPut(srv, A, { file: wrong });
    expect(r).toMatchObject({ status: 422, upgraded: true, sent: A.manifest.compressedBytes });
    expect(errCode(r)).toBe('DIGEST_MISMATCH');
    await expectNothingStored(srv);
  });

  it('no token 401, unknown token 401, read-only token 403: refused before 101, nothing sent', async () => {
    const srv = await startServer();
    const none = await fastPut(srv, A, { token: null });
    expect(none).toMatchObject({ status: 401, upgraded: false, sent: 0 });
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(await fastPut(srv, A, { token: 'not-a-token-0000000000' })).toMatchObject({ status: 401, upgraded: false, sent: 0 });
    const ro = await fastPut(srv, A, { token: RO });
    expect(ro).toMatchObject({ status: 403, upgraded: false, sent: 0 });
    expect(errCode(ro)).toBe('FORBIDDEN');
    await expectNothingStored(srv);
  });

  it('over maxUploadBytes: 413 before 101; a length that disagrees with the manifest: 422; bad names: 400', async () => {
    const srv = await startServer();
    const big = { ...A, manifest: { ...A.manifest, compressedBytes: MAX_UPLOAD + 1 } };
    const r = await fastPut(srv, big, { bytes: MAX_UPLOAD + 1 });
    expect(r).toMatchObject({ status: 413, upgraded: false, sent: 0 });
    const short = await fastPut(srv, A, { bytes: A.manifest.compressedBytes - 1 });
    expect(short).toMatchObject({ status: 422, upgraded: false, sent: 0 });
    const bad = await rawUpgradePut(new URL('/v1/bundles/..%2Fetc/1', srv.url), headersFor(A, RW), { path: A.blobPath, bytes: A.manifest.compressedBytes }, { idleTimeoutMs: 10_000 });
    expect(bad).toMatchObject({ status: 400, upgraded: false, sent: 0 });
    const latest = await rawUpgradePut(new URL('/v1/bundles/upg-a/latest', srv.url), headersFor(A, RW), { path: A.blobPath, bytes: A.manifest.compressedBytes }, { idleTimeoutMs: 10_000 });
    expect(latest).toMatchObject({ status: 400, upgraded: false });
    await expectNothingStored(srv);
  });

  it('a client that disconnects mid-body leaves nothing, and the server goes on serving', async () => {
    const srv = await startServer();
    const { sock, head } = await manualUpgrade(srv, A);
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    sock.write(A.bytes.subarray(0, A.bytes.length >> 1));
    // The server has the temp file open (bytes go to disk in 4 MiB batches, so it may still be empty).
    await until('a partial file in tmp/', async () => (await tmpFiles(srv)).length === 1);
    await new Promise((r) => setTimeout(r, 200));
    sock.destroy();
    await until('the abandoned upload logged', async () => srv.logs.some((l) => l.msg.includes('abandoned')));
    await expectNothingStored(srv);
    expect((await fastPut(srv, A)).status).toBe(201);
  });

  it('a client that stops sending is cut after the idle timeout, leaving nothing', async () => {
    const srv = await startServer({ idleTimeoutSeconds: 1 });
    const { sock, head } = await manualUpgrade(srv, A);
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    sock.on('error', () => undefined);
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    sock.write(A.bytes.subarray(0, 100_000));
    const t0 = Date.now();
    await closed;
    expect(Date.now() - t0).toBeLessThan(8000);
    await expectNothingStored(srv);
  });

  it('two uploads of one name:version at once: one 201, the other 409, the stored blob intact', async () => {
    const srv = await startServer();
    const contenders = [relabel(A, 'conc', '1'), relabel(B, 'conc', '1')];
    const ups = await Promise.all(contenders.map((c) => manualUpgrade(srv, c)));
    for (const u of ups) expect(u.head).toMatch(/^HTTP\/1\.1 101 /);
    const answers = ups.map(
      (u) =>
        new Promise<string>((resolve) => {
          let t = '';
          u.sock.on('data', (d: Buffer) => (t += d.toString('latin1')));
          u.sock.on('close', () => resolve(t));
        }),
    );
    for (const [i, u] of ups.entries()) u.sock.write((contenders[i] as Bundle).bytes);
    const texts = await Promise.all(answers);
    const statuses = texts.map((t) => Number(/^HTTP\/1\.1 (\d{3})/.exec(t)?.[1]));
    expect([...statuses].sort()).toEqual([201, 409]);
    const winner = contenders[statuses.indexOf(201)] as Bundle;
    expect((await srv.store.resolve('conc:1')).manifest.sha256).toBe(winner.manifest.sha256);
    expect((await srv.store.verify('conc:1')).ok).toBe(true);
    expect(await blobFiles(srv)).toEqual([`${winner.manifest.sha256}.tar.zst`]);
    expect(await tmpFiles(srv)).toEqual([]);
  });

  it('other upgrades (curl --http2 on http: Upgrade: h2c) are served as the plain requests they are', async () => {
    const srv = await startServer();
    const text = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(srv.port, '127.0.0.1');
      let t = '';
      sock.on('data', (d: Buffer) => (t += d.toString('latin1')));
      sock.on('end', () => resolve(t));
      sock.on('error', reject);
      sock.write('GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n');
      setTimeout(() => sock.end(), 500);
    });
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toContain('{"ok":true}');
  });

  it('plain PUT still works, and a client falls back to it on a server without the upgrade path', async () => {
    const srv = await startServer();
    srv.app.server.removeAllListeners('upgrade');
    const client = new RepoClient(srv.url, RW);
    const res = await client.publish({ manifest: B.manifest, blobPath: B.blobPath, manifestPath: '' });
    expect(res).toMatchObject({ alreadyPresent: false, attempts: 1 });
    expect(srv.logs.some((l) => l.msg === 'request' && l.obj.status === 411)).toBe(true);
    expect(srv.logs.some((l) => l.msg === 'request' && l.obj.method === 'PUT' && l.obj.status === 201)).toBe(true);
    expect((await srv.store.verify('upg-b:1')).ok).toBe(true);
  });
});
