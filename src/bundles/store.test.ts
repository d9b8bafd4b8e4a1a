import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VmforgeError } from '../errors.js';
import type { Manifest } from './manifest.js';
import { BundleStore } from './store.js';

let dir: string;
let store: BundleStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmforge-store-'));
  store = new BundleStore(dir);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function manifestFor(data: Buffer, name = 'tiny', version = '1'): Manifest {
  return {
    schemaVersion: 1,
    name,
    version,
    created: '2026-01-01T00:00:00.000Z',
    os: { id: 'debian', versionId: '12', prettyName: 'Debian 12', family: 'debian' },
    arch: 'x86_64',
    kernels: [],
    unpackedBytes: 0,
    fileCount: 0,
    compressedBytes: data.length,
    compression: 'zstd',
    sha256: createHash('sha256').update(data).digest('hex'),
    excludes: [],
  };
}

const stage = (data: Buffer) => store.stageBlob(Readable.from([data]));
const tmpFiles = async () => readdir(join(dir, 'tmp')).catch(() => [] as string[]);
const blobFiles = async () => readdir(join(dir, 'blobs', 'sha256')).catch(() => [] as string[]);

async function codeOf(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(VmforgeError);
  return (e as VmforgeError).code;
}

describe('publishStaged', () => {
  it('publishes a staged blob, and refuses the same name:version again', async () => {
    const a = Buffer.from('first archive');
    const res = await store.publishStaged(manifestFor(a), await stage(a));
    expect((await store.resolve('tiny:1')).blobPath).toBe(res.blobPath);
    expect((await store.verify('tiny:1')).ok).toBe(true);

    const b = Buffer.from('second archive');
    expect(await codeOf(store.publishStaged(manifestFor(b), await stage(b)))).toBe('CONFLICT');
    // Same bytes again is a conflict too: a repository never silently accepts a re-upload.
    expect(await codeOf(store.publishStaged(manifestFor(a), await stage(a)))).toBe('CONFLICT');
    expect((await store.resolve('tiny:1')).manifest.sha256).toBe(manifestFor(a).sha256);
    expect(await blobFiles()).toEqual([`${manifestFor(a).sha256}.tar.zst`]);
    expect(await tmpFiles()).toEqual([]);
  });

  it('refuses a staged blob that does not match the manifest, leaving nothing', async () => {
    const a = Buffer.from('archive');
    expect(await codeOf(store.publishStaged(manifestFor(Buffer.from('other')), await stage(a)))).toBe('INVALID_INPUT');
    expect(await store.list()).toEqual([]);
    expect(await blobFiles()).toEqual([]);
    expect(await tmpFiles()).toEqual([]);
  });

  it('of concurrent publishers of one name:version exactly one wins', async () => {
    const datas = Array.from({ length: 12 }, (_, i) => Buffer.from(`archive number ${i}`));
    const staged = await Promise.all(datas.map(stage));
    const results = await Promise.allSettled(staged.map((s, i) => store.publishStaged(manifestFor(datas[i] as Buffer), s)));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost.map((r) => (r.reason as VmforgeError).code)).toEqual(Array(11).fill('CONFLICT'));
    const stored = await store.resolve('tiny:1');
    expect((await store.verify('tiny:1')).ok).toBe(true);
    // The losers' blobs went again; only the winner's is left.
    expect(await blobFiles()).toEqual([`${stored.manifest.sha256}.tar.zst`]);
    expect(await tmpFiles()).toEqual([]);
  });

  it('a loser sharing the winner\'s blob does not remove it', async () => {
    const a = Buffer.from('shared archive');
    const [s1, s2] = await Promise.all([stage(a), stage(a)]);
    const results = await Promise.allSettled([store.publishStaged(manifestFor(a), s1), store.publishStaged(manifestFor(a), s2)]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect((await store.verify('tiny:1')).ok).toBe(true);
    expect(await tmpFiles()).toEqual([]);
  });
});
